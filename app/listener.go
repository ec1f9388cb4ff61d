package app

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// limitListener accepts at most max connections at once. A connection past
// the cap is closed as soon as it is accepted, rather than left in the
// kernel's queue: the accept loop keeps moving, and the file descriptors
// basinix holds stay bounded whatever a client opens (20,000 slow
// connections once exhausted them and /healthz timed out). Together with
// the read timeouts, a flood is cut off within a timeout.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	log     zerolog.Logger
	refused atomic.Int64
	lastLog atomic.Int64 // unix seconds of the last "refused" log line
}

func newLimitListener(l net.Listener, max int, log zerolog.Logger) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), log: log}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			c.Close()
			n := l.refused.Add(1)
			if now := time.Now().Unix(); l.lastLog.Swap(now) != now { // a line a second at most
				l.log.Warn().Int("max_connections", cap(l.slots)).Int64("refused", n).Msg("connection refused: too many open")
			}
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
