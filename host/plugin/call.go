package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/pulpo/pulpo/abi"
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
}

type callKey struct{}

func callFrom(ctx context.Context) *callState {
	cs, _ := ctx.Value(callKey{}).(*callState)
	return cs
}

// call runs one export on a pooled instance. It sets up the mounts, the deadline (the
// sooner of the caller's and CallTimeout) and the cancellation grace, then classifies the
// outcome. Any failure discards the instance: a trap, a timeout, a non-zero return even
// without a message, or a plugin-reported error.
func (p *Plugin) call(ctx context.Context, export string, input []byte, cs *callState) ([]byte, error) {
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

	deadline := time.Now().Add(p.limits.CallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	hardCtx, hardCancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer hardCancel()
	var hostCancel context.CancelFunc
	cs.hostCtx, hostCancel = context.WithDeadline(ctx, deadline)
	defer hostCancel()
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
		return fmt.Errorf("%w after %s", ErrTimeout, p.limits.CallTimeout)
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
