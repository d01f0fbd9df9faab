package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Commands travel as NATS requests on vmpool.cmd.<role>.<name>.<verb>; the
// reply is a JSON Reply. Unlike events, requests are not durable: the
// caller retries, and the daemon makes retries harmless (a submit carries
// an idempotency key, a claim its claim id).

// CmdSubject is the request subject of a daemon's verb.
func CmdSubject(role, name, verb string) string {
	return "vmpool.cmd." + role + "." + name + "." + verb
}

// Code is a stable, documented error code that survives the trip over the
// bus, e.g. "job-not-found".
type Code string

// CodedError is an error with a stable code. Sentinels are CodedErrors;
// wrap them with context using %w.
type CodedError struct {
	Code Code
	Msg  string
}

func (e *CodedError) Error() string { return e.Msg }

// ErrorCode returns the code.
func (e *CodedError) ErrorCode() Code { return e.Code }

// NewError makes a sentinel error with a code.
func NewError(code Code, msg string) *CodedError { return &CodedError{code, msg} }

// With is an error of e's code that says msg (formatted) instead of e's
// message: for a case the sentinel's own words do not fit, which wrapping
// (%w) would append ("job 1.0 is already held: job already removed").
// errors.Is matches it against e.
func (e *CodedError) With(format string, args ...any) *CodedError {
	return &CodedError{e.Code, fmt.Sprintf(format, args...)}
}

// Is matches errors with the same code.
func (e *CodedError) Is(target error) bool {
	var c interface{ ErrorCode() Code }
	return errors.As(target, &c) && c.ErrorCode() == e.Code
}

// RemoteError is an error a daemon returned over the bus. errors.Is matches
// it against any error with the same code, so a client checks
// errors.Is(err, schedd.ErrJobNotFound) exactly as the daemon would.
type RemoteError struct {
	Code Code   `json:"code"`
	Msg  string `json:"message"`
}

func (e *RemoteError) Error() string { return e.Msg }

// ErrorCode returns the code.
func (e *RemoteError) ErrorCode() Code { return e.Code }

// Is matches errors with the same code.
func (e *RemoteError) Is(target error) bool {
	var c interface{ ErrorCode() Code }
	return errors.As(target, &c) && c.ErrorCode() == e.Code
}

// ErrInternal is the code of errors that carry no code of their own.
var ErrInternal = NewError("internal", "internal error")

// ErrorCodeOf returns the code of err, or "internal".
func ErrorCodeOf(err error) Code {
	var c interface{ ErrorCode() Code }
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ErrInternal.Code
}

// Reply is the envelope of every command reply.
type Reply struct {
	Error *RemoteError    `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	More  bool            `json:"more,omitempty"` // more chunks follow (streamed replies)
}

// Chunks is what a handler returns to stream a large reply: it calls emit
// once per chunk, in order.
type Chunks func(emit func(data any) error) error

// Handler decides a request. It returns the reply data (any JSON value, or
// Chunks to stream), or an error whose code travels to the caller.
type Handler func(ctx context.Context, data []byte) (any, error)

// Server serves a daemon's verbs.
type Server struct {
	nc     *nats.Conn
	logger *slog.Logger
	subs   []*nats.Subscription
	wg     sync.WaitGroup
	sem    chan struct{}
}

// NewServer builds a request server with at most workers requests handled
// at once.
func NewServer(nc *nats.Conn, logger *slog.Logger, workers int) *Server {
	if workers <= 0 {
		workers = 64
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{nc: nc, logger: logger, sem: make(chan struct{}, workers)}
}

// Handle subscribes h to subject. Requests are handled concurrently; h must
// serialise what needs it (daemons do, through their Loop).
func (s *Server) Handle(ctx context.Context, subject string, h Handler) error {
	return s.handle(ctx, subject, func(ctx context.Context, _ *nats.Msg, data []byte) (any, error) { return h(ctx, data) })
}

// UserHandler decides a request a user made; user is the last token of the
// request's subject, which on a pool with credentials only that user may
// publish to (see UserCmdSubject).
type UserHandler func(ctx context.Context, user string, data []byte) (any, error)

// HandleUser subscribes h to prefix.<user> for every user.
func (s *Server) HandleUser(ctx context.Context, prefix string, h UserHandler) error {
	return s.handle(ctx, prefix+".*", func(ctx context.Context, m *nats.Msg, data []byte) (any, error) {
		user := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		if err := CheckUserName(user); err != nil {
			return nil, fmt.Errorf("request from %q: %w", user, ErrInternal)
		}
		return h(ctx, user, data)
	})
}

func (s *Server) handle(ctx context.Context, subject string, h func(context.Context, *nats.Msg, []byte) (any, error)) error {
	sub, err := s.nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		s.wg.Add(1)
		runTask(func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serve(ctx, m, h)
		})
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	s.subs = append(s.subs, sub)
	return nil
}

// idleWorkers hands a request to a goroutine that has served one before
// and waits for another (workerIdle at most): its stack has grown to what
// a request takes already. A goroutine per request started at 8 KiB and
// grew, copying its stack, through the job ad's parse and the decision:
// a tenth of the CPU of 10,000 sim startds taking claims. Shared by every
// Server of the process.
var idleWorkers = make(chan func())

const workerIdle = 5 * time.Second

// runTask runs f on an idle worker, or on a new one.
func runTask(f func()) {
	select {
	case idleWorkers <- f:
	default:
		go worker(f)
	}
}

func worker(f func()) {
	f()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		select {
		case f = <-idleWorkers:
			f()
			t.Reset(workerIdle)
		case <-t.C:
			return
		}
	}
}

func (s *Server) serve(ctx context.Context, m *nats.Msg, h func(context.Context, *nats.Msg, []byte) (any, error)) {
	out, err := h(ctx, m, m.Data)
	if err != nil {
		s.respond(m, Reply{Error: &RemoteError{Code: ErrorCodeOf(err), Msg: err.Error()}})
		return
	}
	if chunks, ok := out.(Chunks); ok {
		fc, err := s.flowControl(m)
		if err != nil {
			s.respond(m, Reply{Error: &RemoteError{Code: ErrInternal.Code, Msg: err.Error()}})
			return
		}
		defer fc.close()
		err = chunks(func(data any) error {
			b, ok := data.(json.RawMessage) // already encoded by the handler
			if !ok {
				var err error
				if b, err = json.Marshal(data); err != nil {
					return err
				}
			}
			if err := fc.wait(ctx); err != nil {
				return err
			}
			return s.respondMsg(m, Reply{Data: b, More: true}, fc.inbox)
		})
		if err != nil {
			s.respond(m, Reply{Error: &RemoteError{Code: ErrorCodeOf(err), Msg: err.Error()}})
			return
		}
		s.respond(m, Reply{})
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.respond(m, Reply{Error: &RemoteError{Code: ErrInternal.Code, Msg: fmt.Sprintf("encode reply: %v", err)}})
		return
	}
	s.respond(m, Reply{Data: b})
}

// WindowHeader, on a request, says the caller takes a streamed reply
// under flow control: it answers each chunk that carries a reply subject
// once it has taken it, and the server keeps at most that many chunks
// unanswered. Without it a fast server could queue a big reply (q -json of
// a large queue) faster than a busy client reads it, and NATS would cut the
// client off as a slow consumer: the call then waited for chunks that were
// gone.
const WindowHeader = "Vmpool-Window"

// streamWindow is the chunks a caller lets a server send ahead.
const streamWindow = 8

// CreditTimeout is how long a server waits for a caller to take a chunk
// before it gives the reply up.
var CreditTimeout = 60 * time.Second

// flow is the server's side of one flow-controlled streamed reply.
type flow struct {
	window int64 // 0: the caller asked for none
	inbox  string
	sub    *nats.Subscription
	sent   int64
	taken  atomic.Int64
	notify chan struct{}
}

func (s *Server) flowControl(m *nats.Msg) (*flow, error) {
	f := &flow{}
	if m.Header == nil {
		return f, nil
	}
	n, err := strconv.Atoi(m.Header.Get(WindowHeader))
	if err != nil || n <= 0 {
		return f, nil
	}
	f.window, f.inbox, f.notify = int64(n), s.nc.NewRespInbox(), make(chan struct{}, 1)
	f.sub, err = s.nc.Subscribe(f.inbox, func(*nats.Msg) {
		f.taken.Add(1)
		select {
		case f.notify <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe for flow control: %w", err)
	}
	return f, nil
}

// wait returns once the caller has taken enough chunks for one more to go.
func (f *flow) wait(ctx context.Context) error {
	if f.window == 0 {
		return nil
	}
	var timer *time.Timer
	for f.sent-f.taken.Load() >= f.window {
		if timer == nil {
			timer = time.NewTimer(CreditTimeout)
			defer timer.Stop()
		}
		select {
		case <-f.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("the caller took no chunk of the reply for %s: %w", CreditTimeout, ErrStalled)
		}
	}
	f.sent++
	return nil
}

func (f *flow) close() {
	if f.sub != nil {
		_ = f.sub.Unsubscribe()
	}
}

func (s *Server) respond(m *nats.Msg, r Reply) error { return s.respondMsg(m, r, "") }

// respondMsg sends r to m's caller; a non-empty credit is the subject the
// caller answers to once it has taken r.
func (s *Server) respondMsg(m *nats.Msg, r Reply, credit string) error {
	var b []byte
	if r.Error == nil && len(r.Data) > 0 {
		// The data is JSON already (json.Marshal's, or a handler's
		// RawMessage): wrap it without encoding it again, which for a
		// large reply would scan every byte once more.
		b = make([]byte, 0, len(r.Data)+24)
		b = append(append(append(b, `{"data":`...), r.Data...), ',')
		if r.More {
			b = append(b, `"more":true}`...)
		} else {
			b = append(b[:len(b)-1], '}')
		}
	} else {
		var err error
		if b, err = json.Marshal(r); err != nil {
			return err
		}
	}
	if err := s.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Reply: credit, Data: b}); err != nil {
		s.logger.Warn("send reply", "subject", m.Subject, "err", err)
		return err
	}
	return nil
}

// Close unsubscribes and waits for requests in flight.
func (s *Server) Close() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	s.wg.Wait()
}

// ErrNoResponders is returned by Call when no daemon serves the subject.
var ErrNoResponders = NewError("no-responders", "no daemon answers")

// ErrStalled ends a streamed reply whose caller stopped taking chunks.
var ErrStalled = NewError("stalled", "the caller stopped reading the reply")

// Call sends req (JSON encoded) and decodes the reply data into resp (nil
// to ignore it). A daemon's error comes back as *RemoteError.
func Call(ctx context.Context, nc *nats.Conn, subject string, req, resp any) error {
	return CallStream(ctx, nc, subject, req, func(data json.RawMessage) error {
		if resp == nil || len(data) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, resp); err != nil {
			return fmt.Errorf("decode reply from %s: %w", subject, err)
		}
		return nil
	})
}

// CallStream sends req and calls fn with the data of each reply chunk.
func CallStream(ctx context.Context, nc *nats.Conn, subject string, req any, fn func(json.RawMessage) error) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request to %s: %w", subject, err)
	}
	mux, err := muxFor(nc)
	if err != nil {
		return fmt.Errorf("request %s: %w", subject, err)
	}
	inbox, replies := mux.open()
	defer mux.close(inbox)
	hdr := nats.Header{}
	hdr.Set(WindowHeader, strconv.Itoa(streamWindow))
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Data: body, Header: hdr}); err != nil {
		return fmt.Errorf("request %s: %w", subject, err)
	}
	for {
		m, _, err := replies.Next(ctx) // never closed: ends only with ctx
		if err != nil {
			return fmt.Errorf("request %s: %w", subject, err)
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return fmt.Errorf("request %s: %w", subject, ErrNoResponders)
		}
		r, err := decodeReply(m.Data)
		if err != nil {
			return fmt.Errorf("decode reply from %s: %w", subject, err)
		}
		if r.Error != nil {
			return r.Error
		}
		if len(r.Data) > 0 {
			if err := fn(r.Data); err != nil {
				return err
			}
		}
		if r.More && m.Reply != "" {
			// Taken: the server may send one more chunk.
			if err := nc.Publish(m.Reply, nil); err != nil {
				return fmt.Errorf("request %s: %w", subject, err)
			}
		}
		if !r.More {
			return nil
		}
	}
}

// replyMux takes the replies to every call made on one connection through
// one wildcard subscription, as nats.go's own Request does, and hands each
// to its call's pipe. A call then costs no subscription of its own: no SUB
// and UNSUB for the server to process, and no goroutine of nats.go's.
type replyMux struct {
	prefix string // <inbox>. ; a call's inbox is prefix + a number
	sub    *nats.Subscription
	mu     sync.Mutex
	next   uint64
	calls  map[string]*Pipe[*nats.Msg]
}

// muxes holds each connection's replyMux.
var muxes struct {
	sync.Mutex
	m map[*nats.Conn]*replyMux
}

// muxFor returns nc's replyMux, subscribing it on first use.
func muxFor(nc *nats.Conn) (*replyMux, error) {
	muxes.Lock()
	defer muxes.Unlock()
	if m := muxes.m[nc]; m != nil && m.sub.IsValid() {
		return m, nil
	}
	if muxes.m == nil {
		muxes.m = map[*nats.Conn]*replyMux{}
	}
	for c := range muxes.m { // forget the connections closed since
		if c.IsClosed() {
			delete(muxes.m, c)
		}
	}
	// Under the connection's own inbox prefix, which credentials allow it
	// to subscribe to, and apart from nats.go's request mux.
	m := &replyMux{prefix: nc.NewInbox() + ".", calls: map[string]*Pipe[*nats.Msg]{}}
	sub, err := nc.Subscribe(m.prefix+"*", m.deliver)
	if err != nil {
		return nil, fmt.Errorf("subscribe to replies: %w", err)
	}
	// No pending limit: a long chunked reply (q -json of a big queue) is
	// never dropped as a slow consumer; its caller's window (WindowHeader)
	// bounds it.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to replies: %w", err)
	}
	m.sub = sub
	muxes.m[nc] = m
	return m, nil
}

// open starts a call: its inbox, and the pipe of its replies in arrival
// order (unbounded, so the mux never waits for a slow caller).
func (m *replyMux) open() (string, *Pipe[*nats.Msg]) {
	p := NewPipe[*nats.Msg]()
	m.mu.Lock()
	m.next++
	inbox := m.prefix + strconv.FormatUint(m.next, 36)
	m.calls[inbox] = p
	m.mu.Unlock()
	return inbox, p
}

// close ends a call: replies still arriving for it are dropped.
func (m *replyMux) close(inbox string) {
	m.mu.Lock()
	delete(m.calls, inbox)
	m.mu.Unlock()
}

func (m *replyMux) deliver(msg *nats.Msg) {
	m.mu.Lock()
	p := m.calls[msg.Subject]
	m.mu.Unlock()
	if p != nil {
		p.Put(msg)
	}
}

// decodeReply is json.Unmarshal of a Reply. The layouts Server.respond
// writes around data take a fast path: the data is checked once and not
// copied, where encoding/json scans a large reply twice.
func decodeReply(b []byte) (Reply, error) {
	const head = `{"data":`
	if bytes.HasPrefix(b, []byte(head)) {
		start := skipJSONSpace(b, len(head))
		if end, ok := JSONValueEnd(b, start); ok {
			switch string(b[end:]) {
			case "}":
				return Reply{Data: b[start:end]}, nil
			case `,"more":true}`:
				return Reply{Data: b[start:end], More: true}, nil
			}
		}
	}
	var r Reply
	err := json.Unmarshal(b, &r)
	return r, err
}

// Pipe is an unbounded first-in first-out queue from producers that must
// never block (a NATS callback; a writer holding a lock) to one consumer.
type Pipe[T any] struct {
	mu    sync.Mutex
	items []T
	done  bool
	err   error
	ready chan struct{}
}

// NewPipe returns an empty pipe.
func NewPipe[T any]() *Pipe[T] { return &Pipe[T]{ready: make(chan struct{}, 1)} }

func (p *Pipe[T]) signal() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// Put adds v; it never blocks.
func (p *Pipe[T]) Put(v T) {
	p.mu.Lock()
	p.items = append(p.items, v)
	p.mu.Unlock()
	p.signal()
}

// Close says nothing more comes, and why (nil: all came).
func (p *Pipe[T]) Close(err error) {
	p.mu.Lock()
	p.done, p.err = true, err
	p.mu.Unlock()
	p.signal()
}

// Next waits for the next item. ok is false once the pipe is closed and
// drained, with Close's error, or when ctx is done, with ctx's.
func (p *Pipe[T]) Next(ctx context.Context) (v T, ok bool, err error) {
	for {
		p.mu.Lock()
		if len(p.items) > 0 {
			v = p.items[0]
			var zero T
			p.items[0] = zero
			p.items = p.items[1:]
			p.mu.Unlock()
			return v, true, nil
		}
		done, err := p.done, p.err
		p.mu.Unlock()
		if done {
			return v, false, err
		}
		select {
		case <-p.ready:
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
	}
}
