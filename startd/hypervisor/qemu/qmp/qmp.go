// Package qmp is a client for the QEMU Machine Protocol over a unix socket:
// the greeting and capabilities negotiation, commands with ids (several may
// be in flight from different goroutines), file descriptors passed with a
// command (getfd), and the asynchronous events QEMU sends between replies.
//
// The qemu driver is its only caller; it imports nothing of vmpool's.
package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrClosed is returned by calls on a client whose connection has ended:
// closed by Close, or by QEMU (which usually means QEMU exited).
var ErrClosed = errors.New("qmp: connection closed")

// Error is an error reply from QEMU, e.g. Class "GenericError".
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// Event is an asynchronous notification, e.g. SHUTDOWN or MIGRATION.
type Event struct {
	Name      string          `json:"event"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

// Time is when QEMU emitted the event.
func (e Event) Time() time.Time {
	return time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
}

// Version is QEMU's version from the greeting.
type Version struct {
	Major   int    `json:"major"`
	Minor   int    `json:"minor"`
	Micro   int    `json:"micro"`
	Package string `json:"-"`
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

// message is any object QEMU sends.
type message struct {
	QMP *struct {
		Version struct {
			QEMU    Version `json:"qemu"`
			Package string  `json:"package"`
		} `json:"version"`
	} `json:"QMP"`
	Event  string          `json:"event"`
	ID     *string         `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *Error          `json:"error"`
}

type reply struct {
	ret json.RawMessage
	err error
}

// Client is one QMP connection. Its methods are safe for concurrent use.
// A Client owns one goroutine, which reads the connection; Close ends it
// and waits for it, so a Client must always be closed.
type Client struct {
	conn    *net.UnixConn
	version Version

	writeMu sync.Mutex // one command on the wire at a time

	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan reply
	events  []Event
	err     error // why the connection ended; set before done is closed

	ready chan struct{} // has a value while events are queued
	done  chan struct{} // closed when the reader has exited
}

// Dial connects to the QMP socket at path and negotiates capabilities.
// ctx bounds the connection and the handshake only.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial %s: %w", path, err)
	}
	c, err := New(ctx, conn.(*net.UnixConn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: %s: %w", path, err)
	}
	return c, nil
}

// New reads QEMU's greeting from conn, enters command mode and starts the
// reader. ctx bounds the handshake. On success the Client owns conn.
func New(ctx context.Context, conn *net.UnixConn) (*Client, error) {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	dec := json.NewDecoder(conn)
	var greet message
	if err := dec.Decode(&greet); err != nil {
		stop()
		return nil, handshakeErr(ctx, "read greeting", err)
	}
	if greet.QMP == nil {
		stop()
		return nil, fmt.Errorf("read greeting: not a QMP greeting")
	}
	if _, err := conn.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n")); err != nil {
		stop()
		return nil, handshakeErr(ctx, "send qmp_capabilities", err)
	}
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			stop()
			return nil, handshakeErr(ctx, "read qmp_capabilities reply", err)
		}
		if m.Error != nil {
			stop()
			return nil, fmt.Errorf("qmp_capabilities: %w", m.Error)
		}
		if m.Return != nil {
			break
		}
		// An event before the reply is impossible before capabilities
		// negotiation ends; ignore anything else defensively.
	}
	if !stop() {
		// The handshake raced ctx, which has set a deadline in the past.
		<-fired
		return nil, ctx.Err()
	}
	conn.SetDeadline(time.Time{})
	c := &Client{
		conn:    conn,
		version: greet.QMP.Version.QEMU,
		pending: make(map[string]chan reply),
		ready:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	c.version.Package = greet.QMP.Version.Package
	go c.read(dec)
	return c, nil
}

func handshakeErr(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Version is the QEMU version the greeting announced.
func (c *Client) Version() Version { return c.version }

// read is the reader goroutine: replies go to their callers, events to the
// queue. It exits when the connection fails or is closed.
func (c *Client) read(dec *json.Decoder) {
	var err error
	for {
		var raw json.RawMessage
		if err = dec.Decode(&raw); err != nil {
			break
		}
		var m message
		if err = json.Unmarshal(raw, &m); err != nil {
			break
		}
		switch {
		case m.Event != "":
			var ev Event
			if err = json.Unmarshal(raw, &ev); err != nil {
				break
			}
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
			select {
			case c.ready <- struct{}{}:
			default:
			}
		case m.ID != nil:
			c.mu.Lock()
			ch := c.pending[*m.ID]
			delete(c.pending, *m.ID)
			c.mu.Unlock()
			if ch != nil {
				r := reply{ret: m.Return}
				if m.Error != nil {
					r.err = m.Error
				}
				ch <- r // buffered
			}
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		c.err = ErrClosed
	} else {
		c.err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.mu.Unlock()
	close(c.done)
}

// Done is closed when the connection has ended; Err then tells why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the connection works, then an error wrapping ErrClosed.
func (c *Client) Err() error {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	default:
		return nil
	}
}

// Close ends the connection and waits for the reader goroutine. It is
// safe to call more than once.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// EventsReady has a value whenever events are queued; after receiving
// from it, call TakeEvents. Select on it together with Done.
func (c *Client) EventsReady() <-chan struct{} { return c.ready }

// TakeEvents removes and returns the queued events, oldest first. The
// queue is unbounded, so a slow consumer never stalls replies.
func (c *Client) TakeEvents() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	evs := c.events
	c.events = nil
	return evs
}

// Execute runs command with args (nil for none, or a value that marshals to
// a JSON object) and decodes the reply into result (nil to discard it). An
// error reply is returned as *Error. If ctx ends first, Execute returns
// ctx's error; QEMU may still run the command.
func (c *Client) Execute(ctx context.Context, command string, args, result any) error {
	return c.execute(ctx, command, args, nil, result)
}

// ExecuteWithFile is Execute, with f's descriptor passed to QEMU alongside
// the command (SCM_RIGHTS), as "getfd" and "add-fd" expect. QEMU gets its
// own copy; the caller still owns f.
func (c *Client) ExecuteWithFile(ctx context.Context, command string, args any, f *os.File, result any) error {
	return c.execute(ctx, command, args, f, result)
}

func (c *Client) execute(ctx context.Context, command string, args any, f *os.File, result any) error {
	if err := ctx.Err(); err != nil {
		// Not sent at all: the write's deadline is set asynchronously
		// once ctx ends, so a write begun now could still go out and
		// its reply win the race against ctx.Done below.
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", command, ErrClosed)
	}
	c.nextID++
	id := "vmpool-" + strconv.FormatUint(c.nextID, 10)
	ch := make(chan reply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	b, err := json.Marshal(req)
	if err != nil {
		forget()
		return fmt.Errorf("qmp %s: encode arguments: %w", command, err)
	}
	b = append(b, '\n')
	if err := c.write(ctx, b, f); err != nil {
		forget()
		return fmt.Errorf("qmp %s: %w", command, err)
	}

	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("qmp %s: %w", command, r.err)
		}
		if result != nil {
			if err := json.Unmarshal(r.ret, result); err != nil {
				return fmt.Errorf("qmp %s: decode reply: %w", command, err)
			}
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-c.done:
		forget()
		// The reply may have raced the end of the connection.
		select {
		case r := <-ch:
			if r.err != nil {
				return fmt.Errorf("qmp %s: %w", command, r.err)
			}
			if result != nil {
				if err := json.Unmarshal(r.ret, result); err != nil {
					return fmt.Errorf("qmp %s: decode reply: %w", command, err)
				}
			}
			return nil
		default:
		}
		return fmt.Errorf("qmp %s: %w", command, c.Err())
	}
}

// write sends one command, with f's descriptor when f is not nil.
func (c *Client) write(ctx context.Context, b []byte, f *os.File) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.conn.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			// The callback has started; let it finish before clearing
			// the deadline, or it could set it again afterwards.
			<-fired
			c.conn.SetWriteDeadline(time.Time{})
		}
	}()
	var err error
	n := 0
	if f != nil {
		var oob []byte
		sc, scErr := f.SyscallConn()
		if scErr != nil {
			return scErr
		}
		if ctlErr := sc.Control(func(fd uintptr) { oob = syscall.UnixRights(int(fd)) }); ctlErr != nil {
			return ctlErr
		}
		// QEMU takes the descriptor from the message that carries the
		// start of the command, so send it all in one sendmsg.
		n, _, err = c.conn.WriteMsgUnix(b, oob, nil)
		runtime.KeepAlive(f)
		if err == nil && n < len(b) {
			var m int
			m, err = c.conn.Write(b[n:])
			n += m
		}
	} else {
		n, err = c.conn.Write(b)
	}
	if err != nil && n > 0 {
		// Half a command is on the wire; QEMU would read the next one
		// as its continuation. The connection is no longer usable.
		c.conn.Close()
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && (errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		return ErrClosed
	}
	return err
}
