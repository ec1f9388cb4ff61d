package eval

import "testing"

// The walkers' initial GC heap: from the memory the machine has, shared by
// the workers, within Nix's default and 4 GiB, and never near a bound that
// retires a process.
func TestInitialHeap(t *testing.T) {
	const mib, gib = int64(1 << 20), int64(1 << 30)
	for _, c := range []struct {
		name string
		opt  Options
		want int64
	}{
		{"unknown memory", Options{Workers: 2}, 1 * gib},
		{"24 GiB, 2 workers: the 4 GiB cap", Options{Workers: 2, AvailableMemory: 24 * gib}, 4 * gib},
		{"16 GiB, 8 workers: a share of half", Options{Workers: 8, AvailableMemory: 16 * gib}, 1 * gib},
		{"2 GiB, 16 workers: never below Nix's default", Options{Workers: 16, AvailableMemory: 2 * gib}, 384 * mib},
		{"max_memory_mib 1200: a quarter of it", Options{Workers: 2, AvailableMemory: 24 * gib, MaxMemory: 1200 * mib}, 300 * mib},
		{"a budget shared by the workers", Options{Workers: 2, AvailableMemory: 24 * gib, MemoryBudget: 4 * gib}, 1 * gib},
	} {
		if got := initialHeap(c.opt); got != c.want {
			t.Errorf("%s: initial heap %d MiB, want %d MiB", c.name, got/mib, c.want/mib)
		}
	}
}
