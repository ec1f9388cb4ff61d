package build

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Machine is a place derivations are built: the local machine, or a remote
// one reached through Nix's remote building, described by one line in the
// /etc/nix/machines format.
type Machine struct {
	// URI is the store URI of a remote machine ("ssh-ng://builder@host");
	// "" is the local machine.
	URI               string
	Systems           []string
	SSHKey            string
	MaxJobs           int
	SpeedFactor       float64
	SupportedFeatures []string
	MandatoryFeatures []string
	HostKey           string // base64 public host key
	// Cores and MemoryMiB are the machine's size (0: not known): builds
	// that need much go to machines that have it.
	Cores, MemoryMiB int
}

// Name is how logs and results name the machine.
func (m *Machine) Name() string {
	if m.URI == "" {
		return "localhost"
	}
	return m.URI
}

// ParseMachines reads machines in the /etc/nix/machines format: one per
// line, fields separated by spaces (URI, systems, SSH key, max jobs, speed
// factor, supported features, mandatory features, base64 host key), "-"
// or a missing field for the default, "#" comments.
func ParseMachines(text string) ([]*Machine, error) {
	var out []*Machine
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := ParseMachine(line)
		if err != nil {
			return nil, fmt.Errorf("machines line %d: %w", i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ParseMachine reads one machine line (see ParseMachines).
func ParseMachine(line string) (*Machine, error) {
	f := strings.Fields(line)
	if len(f) == 0 || len(f) > 8 {
		return nil, fmt.Errorf("%q: want 1 to 8 fields", line)
	}
	field := func(i int) string {
		if i < len(f) && f[i] != "-" {
			return f[i]
		}
		return ""
	}
	list := func(i int) []string {
		if s := field(i); s != "" {
			return strings.Split(s, ",")
		}
		return nil
	}
	m := &Machine{URI: f[0], Systems: list(1), SSHKey: field(2), MaxJobs: 1, SpeedFactor: 1,
		SupportedFeatures: list(5), MandatoryFeatures: list(6), HostKey: field(7)}
	if !strings.Contains(m.URI, "://") {
		m.URI = "ssh://" + m.URI // as Nix reads a bare host name
	}
	if s := field(3); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: max jobs %q is not a count", line, s)
		}
		m.MaxJobs = n
	}
	if s := field(4); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q: speed factor %q is not a positive number", line, s)
		}
		m.SpeedFactor = v
	}
	if len(m.Systems) == 0 {
		return nil, fmt.Errorf("%q: no systems", line)
	}
	return m, nil
}

// Line renders m in the machines format, for Nix's --builders.
func (m *Machine) Line() string {
	or := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	join := func(l []string) string { return or(strings.Join(l, ",")) }
	return strings.Join([]string{m.URI, join(m.Systems), or(m.SSHKey), strconv.Itoa(m.MaxJobs),
		strconv.FormatFloat(m.SpeedFactor, 'g', -1, 64), join(m.SupportedFeatures), join(m.MandatoryFeatures), or(m.HostKey)}, " ")
}

// CanBuild says whether m builds derivations for system that require
// features, as Nix decides it: the system is one of m's, m supports every
// required feature, and every mandatory feature of m is required.
func (m *Machine) CanBuild(system string, features []string) bool {
	if m.MaxJobs == 0 || system != "builtin" && !slices.Contains(m.Systems, system) {
		return false
	}
	for _, f := range features {
		if !slices.Contains(m.SupportedFeatures, f) && !slices.Contains(m.MandatoryFeatures, f) {
			return false
		}
	}
	for _, f := range m.MandatoryFeatures {
		if !slices.Contains(features, f) {
			return false
		}
	}
	return true
}

// machine is a Machine with the pool's view of it.
type machine struct {
	*Machine
	busy      bool      // a batch runs on it; guarded by Pool.mu
	downUntil time.Time // not used before; guarded by Pool.mu
	backoff   time.Duration
}

const (
	minBackoff = 30 * time.Second
	maxBackoff = 10 * time.Minute
)

// markDownLocked takes m out of use for a growing while.
func (m *machine) markDownLocked(now time.Time) time.Duration {
	m.backoff = min(max(2*m.backoff, minBackoff), maxBackoff)
	m.downUntil = now.Add(m.backoff)
	return m.backoff
}

func (m *machine) upLocked(now time.Time) bool { return !now.Before(m.downUntil) }
