package nix

import (
	"bufio"
	"errors"
	"io"
)

// lineReader splits what a process prints into lines, holding at most max
// bytes of one line: the rest of a longer line is read and dropped, and
// the line is handed on cut. A process that prints a line of gigabytes
// thus costs basinix max bytes, never the whole line, and does not fail
// the command.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
	// onRead is called after every read from the process, line or not:
	// bytes coming are a sign of life even inside a long line.
	onRead func()
}

func newLineReader(r io.Reader, max int, onRead func()) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max, onRead: onRead}
}

// next returns the next line without its newline, whether it was cut (it
// was longer than max), and io.EOF after the last one. The line is valid
// until the next call.
func (l *lineReader) next() (line []byte, cut bool, err error) {
	l.buf = l.buf[:0]
	total := 0
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(chunk) > 0 && l.onRead != nil {
			l.onRead()
		}
		total += len(chunk)
		if room := l.max - len(l.buf); room > 0 {
			l.buf = append(l.buf, chunk[:min(room, len(chunk))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && total == 0 {
			return nil, false, err
		}
		// A whole line, or the last one without a newline; an error
		// other than EOF comes again on the next call.
		n := total
		if err == nil {
			n-- // the newline
		}
		return l.buf[:min(len(l.buf), n)], n > l.max, nil
	}
}
