package build

import (
	"sync"

	"github.com/basinix/basinix/nix"
)

// drvCache remembers parsed .drv files (they never change) and the
// closures of derivations over their input derivations.
type drvCache struct {
	mu       sync.Mutex
	drvs     map[string]*nix.Derivation // guarded by mu
	errs     map[string]error           // guarded by mu
	closures map[string][]string        // guarded by mu
	entries  int                        // closure entries held; guarded by mu
}

// maxCached and maxEntries bound the cache; past them, it starts afresh.
const (
	maxCached  = 200_000
	maxEntries = 4_000_000
)

func newDrvCache() *drvCache {
	return &drvCache{drvs: map[string]*nix.Derivation{}, errs: map[string]error{}, closures: map[string][]string{}}
}

// read returns the parsed derivation at path.
func (c *drvCache) read(path string) (*nix.Derivation, error) {
	c.mu.Lock()
	d, err := c.drvs[path], c.errs[path]
	c.mu.Unlock()
	if d != nil || err != nil {
		return d, err
	}
	d, err = nix.ReadDerivation(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.drvs)+len(c.errs) > maxCached {
		c.drvs, c.errs = map[string]*nix.Derivation{}, map[string]error{}
	}
	if err != nil {
		c.errs[path] = err
		return nil, err
	}
	c.drvs[path] = d
	return d, nil
}

// get returns the derivation at path, which read has parsed before; a
// derivation that does not parse is returned with its path only.
func (c *drvCache) get(path string) *nix.Derivation {
	if d, err := c.read(path); err == nil {
		return d
	}
	return &nix.Derivation{Path: path}
}

// closure returns the input derivations of path, transitively, nearest
// first (breadth-first, inputs in sorted order). Inputs that cannot be read
// are listed but not followed.
func (c *drvCache) closure(path string) []string {
	c.mu.Lock()
	cl, ok := c.closures[path]
	c.mu.Unlock()
	if ok {
		return cl
	}
	seen := map[string]bool{path: true}
	queue := []string{path}
	var out []string
	for len(queue) > 0 {
		d, err := c.read(queue[0])
		queue = queue[1:]
		if err != nil {
			continue
		}
		for _, in := range d.Inputs {
			if !seen[in] {
				seen[in] = true
				out = append(out, in)
				queue = append(queue, in)
			}
		}
	}
	c.mu.Lock()
	if c.entries+len(out) > maxEntries {
		c.closures, c.entries = map[string][]string{}, 0
	}
	c.closures[path] = out
	c.entries += len(out)
	c.mu.Unlock()
	return out
}
