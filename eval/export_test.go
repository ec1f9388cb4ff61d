package eval

// Handovers is how many times a walker of s took over the end of another's
// list.
func Handovers(s *Session) int        { return int(s.handovers.Load()) }
func AliasMayExplain(msg string) bool { return aliasMayExplain(msg) }

// WalkExactly makes e's walkers walk every attribute under its own tryEval.
func WalkExactly(e *Evaluator) { e.exactWalks = true }
