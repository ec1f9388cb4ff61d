package checkout

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// gitIndex is a git index file of format version 2 with SHA-1 object
// names, as `git read-tree` writes it for a plain tree. A parallel checkout
// (see Worktree.writeParallel) reads it to fill in the stat data of the
// files it wrote, the one thing `git checkout-index` without -u does not
// record. Only the fixed-size stat fields of entries change, so offsets,
// names, object names and extensions stay git's own bytes.
type gitIndex struct {
	data    []byte
	entries []indexEntry
}

type indexEntry struct {
	off  int    // where the entry starts in data
	mode uint32 // git's mode: 0100644, 0100755, 0120000 or 0160000
	name string
}

// errIndexShape is an index readIndex leaves to git: another version, the
// extended flags, unmerged entries or an extension whose content may
// depend on entries' stat data.
var errIndexShape = errors.New("not a plain version-2 index")

// The on-disk entry: ctime, mtime (seconds, nanoseconds), dev, ino, mode,
// uid, gid, size (32 bits each), the object name (20 bytes), 16 bits of
// flags, then the NUL-padded name (git's Documentation/gitformat-index).
const (
	entryFixed = 62
	entryMode  = 24
	entryFlags = 60
	checksum   = sha1.Size
)

func readIndex(path string) (*gitIndex, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 12+checksum || string(data[:4]) != "DIRC" {
		return nil, fmt.Errorf("index %s: %w", path, errIndexShape)
	}
	body := data[:len(data)-checksum]
	if sum := sha1.Sum(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, fmt.Errorf("index %s: %w (checksum)", path, errIndexShape)
	}
	if binary.BigEndian.Uint32(data[4:]) != 2 {
		return nil, fmt.Errorf("index %s: %w (version %d)", path, errIndexShape, binary.BigEndian.Uint32(data[4:]))
	}
	n := int(binary.BigEndian.Uint32(data[8:]))
	x := &gitIndex{data: data, entries: make([]indexEntry, 0, n)}
	off := 12
	for range n {
		if off+entryFixed >= len(body) {
			return nil, fmt.Errorf("index %s: %w (truncated)", path, errIndexShape)
		}
		flags := binary.BigEndian.Uint16(data[off+entryFlags:])
		if flags&0x7000 != 0 { // extended flags, or a stage of a merge
			return nil, fmt.Errorf("index %s: %w (flags %#x)", path, errIndexShape, flags)
		}
		name := data[off+entryFixed : len(body)]
		end := bytes.IndexByte(name, 0)
		if end <= 0 || (flags&0xfff != 0xfff && end != int(flags&0xfff)) {
			return nil, fmt.Errorf("index %s: %w (name)", path, errIndexShape)
		}
		x.entries = append(x.entries, indexEntry{off: off, mode: binary.BigEndian.Uint32(data[off+entryMode:]), name: string(name[:end])})
		off += (entryFixed + end + 8) &^ 7
	}
	for off < len(body) { // extensions: the tree cache and offset tables
		if off+8 > len(body) {
			return nil, fmt.Errorf("index %s: %w (truncated)", path, errIndexShape)
		}
		switch sig := string(data[off : off+4]); sig {
		case "TREE", "EOIE", "IEOT":
		default:
			return nil, fmt.Errorf("index %s: %w (extension %q)", path, errIndexShape, sig)
		}
		off += 8 + int(binary.BigEndian.Uint32(data[off+4:]))
	}
	if off != len(body) {
		return nil, fmt.Errorf("index %s: %w (extensions)", path, errIndexShape)
	}
	return x, nil
}

// setStat records st as entry i's stat data, as git's fill_stat_data does
// (each field truncated to 32 bits); the mode stays the tree's.
func (x *gitIndex) setStat(i int, st *syscall.Stat_t) {
	b := x.data[x.entries[i].off:]
	put := binary.BigEndian.PutUint32
	put(b[0:], uint32(st.Ctim.Sec))
	put(b[4:], uint32(st.Ctim.Nsec))
	put(b[8:], uint32(st.Mtim.Sec))
	put(b[12:], uint32(st.Mtim.Nsec))
	put(b[16:], uint32(st.Dev))
	put(b[20:], uint32(st.Ino))
	put(b[28:], st.Uid)
	put(b[32:], st.Gid)
	put(b[36:], uint32(st.Size))
}

// write replaces the index file at path with x, its checksum renewed.
func (x *gitIndex) write(path string) error {
	body := x.data[:len(x.data)-checksum]
	sum := sha1.Sum(body)
	copy(x.data[len(body):], sum[:])
	tmp := path + ".new"
	if err := os.WriteFile(tmp, x.data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
