package eval

import (
	"slices"
	"sort"
)

// Change is how an attribute differs between two evaluations.
type Change string

const (
	Added      Change = "added"
	Removed    Change = "removed"
	Changed    Change = "changed"     // both evaluate, the drvPath differs
	EvalBroken Change = "eval-broken" // evaluates at base (or is new), fails at head
	EvalFixed  Change = "eval-fixed"  // fails at base, evaluates at head
	// Unchanged: the same drvPath at base and head (or failing on both).
	// Diffs leave such attributes out; a CI's jobs (a flake's) keep them,
	// since every job gets its verdict (see WithUnchanged).
	Unchanged Change = "unchanged"
)

// AttrDiff is one attribute that differs. Base or Head is nil when the
// attribute does not exist on that side.
type AttrDiff struct {
	Attr   string
	Change Change
	Base   *Attr
	Head   *Attr
}

// Diff is what a change does to one system's package set.
type Diff struct {
	System string
	// Attrs are the attributes whose drvPath or evaluation status differ,
	// sorted by name. Attributes that did not change are left out.
	Attrs []AttrDiff
	// AliasErrors are head attributes that newly evaluate only with aliases.
	AliasErrors []*Attr
	// BaseError and HeadError are set when a whole package set failed.
	BaseError, HeadError *Error
	// baseOutputs are the base's output paths ("" not among them).
	baseOutputs map[string]bool
}

// Compare diffs two evaluations of the same system.
func Compare(base, head *Evaluation) *Diff {
	d := &Diff{System: head.System, BaseError: base.Error, HeadError: head.Error, baseOutputs: make(map[string]bool, len(base.Attrs))}
	for _, b := range base.Attrs {
		if b.OutPath != "" {
			d.baseOutputs[b.OutPath] = true
		}
	}
	for k, h := range head.Attrs {
		b, inBase := base.Attrs[k]
		switch {
		case !inBase && h.Evaluable():
			d.add(k, Added, nil, h)
		case !inBase:
			d.add(k, EvalBroken, nil, h)
		case b.Evaluable() && !h.Evaluable():
			d.add(k, EvalBroken, b, h)
		case !b.Evaluable() && h.Evaluable():
			d.add(k, EvalFixed, b, h)
		case b.Evaluable() && h.DrvPath != b.DrvPath:
			d.add(k, Changed, b, h)
		}
		if h.AliasError && (!inBase || !b.AliasError) {
			d.AliasErrors = append(d.AliasErrors, h)
		}
	}
	if head.Error == nil {
		for k, b := range base.Attrs {
			if _, ok := head.Attrs[k]; !ok {
				d.add(k, Removed, b, nil)
			}
		}
	}
	sort.Slice(d.Attrs, func(i, j int) bool { return d.Attrs[i].Attr < d.Attrs[j].Attr })
	sort.Slice(d.AliasErrors, func(i, j int) bool { return d.AliasErrors[i].Path.String() < d.AliasErrors[j].Path.String() })
	return d
}

// WithUnchanged adds the attributes of head that did not change (same
// drvPath at base, or failing on both), for a CI whose every job gets a
// verdict, and keeps the order by name.
func (d *Diff) WithUnchanged(base, head *Evaluation) {
	listed := make(map[string]bool, len(d.Attrs))
	for _, a := range d.Attrs {
		listed[a.Attr] = true
	}
	for k, h := range head.Attrs {
		if b, ok := base.Attrs[k]; ok && !listed[k] {
			d.add(k, Unchanged, b, h)
		}
	}
	sort.Slice(d.Attrs, func(i, j int) bool { return d.Attrs[i].Attr < d.Attrs[j].Attr })
}

func (d *Diff) add(k string, c Change, b, h *Attr) {
	d.Attrs = append(d.Attrs, AttrDiff{Attr: k, Change: c, Base: b, Head: h})
}

// Count returns how many attributes have change c.
func (d *Diff) Count(c Change) int {
	n := 0
	for _, a := range d.Attrs {
		if a.Change == c {
			n++
		}
	}
	return n
}

// Rebuilds counts the attributes to build at head as nixpkgs CI counts
// them: added, changed and eval-fixed ones whose output path is not one of
// the base's. (A fixed-output derivation whose URL changes and hash does
// not changes the drvPath of everything that uses it, and no output path:
// it rebuilds nothing.) An attribute whose output path is not known counts.
func (d *Diff) Rebuilds() int {
	n := 0
	for _, a := range d.Attrs {
		if (a.Change == Added || a.Change == Changed || a.Change == EvalFixed) && !d.baseOutputs[a.Head.OutPath] {
			n++
		}
	}
	return n
}

// Keep leaves in the diff only the attributes keep accepts (by name), and
// the alias errors of those.
func (d *Diff) Keep(keep func(attr string) bool) {
	d.Attrs = slices.DeleteFunc(d.Attrs, func(a AttrDiff) bool { return !keep(a.Attr) })
	d.AliasErrors = slices.DeleteFunc(d.AliasErrors, func(a *Attr) bool { return !keep(a.Path.String()) })
}

// ChangedNotRebuilt counts the changed attributes whose output path is one
// of the base's: a new derivation, and nothing to build.
func (d *Diff) ChangedNotRebuilt() int {
	n := 0
	for _, a := range d.Attrs {
		if a.Change == Changed && d.baseOutputs[a.Head.OutPath] {
			n++
		}
	}
	return n
}

// RebuildLabel buckets a rebuild count as ofborg's rebuild labels do.
func RebuildLabel(n int) string {
	switch {
	case n <= 0:
		return "0"
	case n <= 10:
		return "1-10"
	case n <= 100:
		return "11-100"
	case n <= 500:
		return "101-500"
	case n <= 1000:
		return "501-1000"
	case n <= 2500:
		return "1001-2500"
	case n <= 5000:
		return "2501-5000"
	}
	return "5001+"
}
