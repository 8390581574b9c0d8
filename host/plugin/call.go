package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/tracing"
)

// callState is what host functions know about the call they serve. Host modules are shared
// by every instance of a plugin's runtime, so the call travels in the context passed to the
// guest (which wazero hands to host functions) under an unexported key; it lives exactly as
// long as the call.
type callState struct {
	// hostCtx is the context for host services: the caller's, bounded by the call deadline.
	hostCtx   context.Context
	cancelled atomic.Bool
	inDir     string // host directory behind /in; "" = the empty directory
	outDir    string // host directory behind /out; "" = the empty directory (read-only)
	fetches   int
	kernel    *kernel

	sync     SyncHost
	lookup   Lookuper
	stat     ArtifactStatter
	progress ProgressReporter
	// read serves artifact_read: Options.Artifacts in every call but describe.
	read ArtifactReader

	// budget counts the guest's own CPU time against CallTimeout; nil outside calls
	// (instance initialisation), where nothing is paused.
	budget *budget
}

// budget is a call's CallTimeout counted in the guest's own CPU time: the CPU time of the
// OS thread running the call (its goroutine is locked to it) less what host functions used
// on it. Time blocked in a host function (emit waiting on a full queue, fetch downloading)
// uses no CPU and time computing in one is the host's, so neither counts: the limit catches
// a runaway plugin, not a long sync or a loaded machine. A watchdog timer checks the clock
// when the budget could have run out (CPU time never runs ahead of wall time) and calls
// expire, which closes the instance, once the guest has used it all.
type budget struct {
	mu      sync.Mutex
	limit   time.Duration
	tid     int
	start   time.Duration // thread CPU time when the call began
	hostCPU time.Duration // thread CPU time spent in finished host functions
	entered time.Duration // thread CPU time when the current host function began
	depth   int           // host functions in progress
	timer   *time.Timer
	expire  func()
	expired bool
	parked  bool // the watchdog fired inside a host function; leaveHost re-arms it
}

// startBudget starts counting for the calling thread (locked by the caller).
func startBudget(limit time.Duration, expire func()) *budget {
	b := &budget{limit: limit, tid: threadID(), expire: expire}
	b.start, _ = threadCPU(b.tid)
	b.timer = time.AfterFunc(limit, b.check)
	return b
}

// used returns the guest's CPU time so far; b.mu is held.
func (b *budget) used() time.Duration {
	now, ok := threadCPU(b.tid)
	if !ok {
		return 0
	}
	if b.depth > 0 {
		now = b.entered // the current host function's time is not the guest's
	}
	return now - b.start - b.hostCPU
}

// check runs when the budget may be spent: it expires the call or looks again later.
func (b *budget) check() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.expired {
		return
	}
	if b.depth > 0 {
		b.parked = true // no guest time passes until the host function returns
		return
	}
	used := b.used()
	if used >= b.limit {
		b.expired = true
		go b.expire()
		return
	}
	b.timer.Reset(max(b.limit-used, 10*time.Millisecond))
}

// enterHost stops counting.
func (b *budget) enterHost() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.depth++
	if b.depth == 1 {
		b.entered, _ = threadCPU(b.tid)
	}
}

// leaveHost counts again.
func (b *budget) leaveHost() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.depth--
	if b.depth == 0 {
		if now, ok := threadCPU(b.tid); ok {
			b.hostCPU += now - b.entered
		}
		if b.parked && !b.expired {
			b.parked = false
			b.timer.Reset(max(b.limit-b.used(), 10*time.Millisecond))
		}
	}
}

func (b *budget) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expired = true
	b.timer.Stop()
}

// hostTimed wraps a host function so that the time it takes does not count against the
// call's CallTimeout.
func hostTimed(fn func(ctx context.Context, stack []uint64)) func(ctx context.Context, stack []uint64) {
	return func(ctx context.Context, stack []uint64) {
		if cs := callFrom(ctx); cs != nil && cs.budget != nil {
			cs.budget.enterHost()
			defer cs.budget.leaveHost()
		}
		fn(ctx, stack)
	}
}

type callKey struct{}

func callFrom(ctx context.Context) *callState {
	cs, _ := ctx.Value(callKey{}).(*callState)
	return cs
}

// call runs one export on a pooled instance. It sets up the mounts, the limits (the
// caller's deadline, CallTimeout of guest time, the cancellation grace), then classifies the
// outcome. Any failure discards the instance: a trap, a timeout, a non-zero return even
// without a message, or a plugin-reported error.
func (p *Plugin) call(ctx context.Context, export string, input []byte, cs *callState) (out []byte, err error) {
	ctx, span := tracing.Start(ctx, "plugin "+p.observedName()+" "+export, tracing.Internal,
		tracing.String("pulpo.plugin", p.observedName()), tracing.String("pulpo.plugin.export", export))
	defer func() { span.End(err) }()
	if o := p.reg.opts.Observer; o != nil {
		start := time.Now()
		defer func() { o.PluginCall(p.observedName(), export, time.Since(start), err) }()
	}
	if len(input) > abi.MaxMessageBytes {
		return nil, p.callError(export, fmt.Errorf("%w: input of %d bytes exceeds %d", ErrLimit, len(input), abi.MaxMessageBytes))
	}
	if err := p.reg.enter(); err != nil {
		return nil, p.callError(export, err)
	}
	defer p.reg.inflight.Done()

	inst, err := p.pool.get(ctx)
	if err != nil {
		return nil, p.callError(export, err)
	}

	// hardCtx ends the guest (CloseOnContextDone): at the caller's deadline, when the guest
	// has run CallTimeout on its own (the budget), or CancelGrace after the caller cancels.
	var hardCtx context.Context
	var hardCancel context.CancelFunc
	if d, ok := ctx.Deadline(); ok {
		hardCtx, hardCancel = context.WithDeadline(context.WithoutCancel(ctx), d)
	} else {
		hardCtx, hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	defer hardCancel()
	// The guest and the host functions it calls run on this goroutine: locked to its thread,
	// the thread's CPU clock measures them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cs.budget = startBudget(p.limits.CallTimeout, hardCancel)
	defer cs.budget.stop()
	// Host services run under the caller's context, and stop with the guest.
	var hostCancel context.CancelFunc
	cs.hostCtx, hostCancel = context.WithCancel(ctx)
	defer hostCancel()
	stopHost := context.AfterFunc(hardCtx, hostCancel)
	defer stopHost()
	stopGrace := context.AfterFunc(ctx, func() {
		cs.cancelled.Store(true)
		time.AfterFunc(p.limits.CancelGrace, hardCancel)
	})
	defer stopGrace()

	if cs.inDir != "" {
		inst.in.set(readOnlyDir(cs.inDir))
	}
	if cs.outDir != "" {
		inst.out.set(writableDir(cs.outDir))
	}
	inst.stderr.take()
	inst.calls++
	cs.kernel = inst.kernel

	rc, callErr := p.invoke(context.WithValue(hardCtx, callKey{}, cs), inst, export, input)

	inst.in.set(readOnlyDir(p.reg.emptyDir))
	inst.out.set(readOnlyDir(p.reg.emptyDir))

	if callErr == nil && rc == 0 && inst.kernel.errOff == 0 {
		out := inst.kernel.output()
		inst.kernel.reset() // an idle instance holds no call data
		if inst.calls >= p.limits.MaxCalls {
			p.pool.discard(inst)
		} else {
			p.pool.put(inst)
		}
		if len(out) > abi.MaxMessageBytes {
			return nil, p.callError(export, fmt.Errorf("%w: output of %d bytes exceeds %d", ErrLimit, len(out), abi.MaxMessageBytes))
		}
		return out, nil
	}

	err = p.classify(ctx, hardCtx, inst, rc, callErr)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w; call cancelled: %w", err, cause)
	}
	p.pool.discard(inst)
	var ae *abi.Error
	if !errors.As(err, &ae) {
		p.log.WarnContext(ctx, "plugin instance discarded", "export", export, "error", err)
	}
	return nil, p.callError(export, err)
}

// invoke runs export on inst with input in a freshly reset kernel and returns the export's
// return code (0 for an export without results).
func (p *Plugin) invoke(ctx context.Context, inst *instance, export string, input []byte) (uint32, error) {
	inst.kernel.reset()
	if err := inst.kernel.setInput(input); err != nil {
		return 0, err
	}
	fn := inst.fn(export)
	if fn == nil {
		return 0, abi.NewError(abi.CodeUnimplemented, "the plugin does not export "+export)
	}
	res, err := fn.Call(ctx)
	if err != nil || len(res) == 0 {
		return 0, err
	}
	return uint32(res[0]), nil
}

// classify turns a failed call into an error: the caller's cancellation or deadline, the
// call timeout, the plugin's own error (an *abi.Error, from the message it set), or ErrTrap
// with whatever the guest wrote to stderr.
func (p *Plugin) classify(ctx, hardCtx context.Context, inst *instance, rc uint32, callErr error) error {
	stderr := strings.TrimSpace(inst.stderr.take())
	withStderr := func(err error) error {
		if stderr == "" {
			return err
		}
		return fmt.Errorf("%w\nplugin stderr:\n%s", err, stderr)
	}
	if hardCtx.Err() != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("call aborted: %w", context.Cause(ctx))
		}
		return fmt.Errorf("%w after %s of plugin CPU time (time in host functions not counted)", ErrTimeout, p.limits.CallTimeout)
	}
	var ae *abi.Error
	if errors.As(callErr, &ae) {
		return ae
	}
	if callErr == nil {
		msg := inst.kernel.errorMessage()
		if msg == "" {
			return withStderr(fmt.Errorf("%w: returned %d without an error message", ErrTrap, rc))
		}
		var pe abi.Error
		if json.Unmarshal([]byte(msg), &pe) == nil && pe.Code != "" {
			return &pe
		}
		return &abi.Error{Code: abi.CodeInternal, Message: msg}
	}
	var exit *sys.ExitError
	if errors.As(callErr, &exit) {
		return withStderr(fmt.Errorf("%w: exited with code %d", ErrTrap, exit.ExitCode()))
	}
	return withStderr(fmt.Errorf("%w: %v", ErrTrap, callErr))
}
