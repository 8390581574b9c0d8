package plugin

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental/sysfs"

	"github.com/pulpo/pulpo/abi"
)

// instance is one instantiation of a plugin: the guest module, its kernel, its two mounts
// and the head of its stderr. It serves one call at a time.
type instance struct {
	mod    api.Module
	kernel *kernel
	funcs  map[string]api.Function
	in     *mountFS
	out    *mountFS
	stderr *headBuffer
	calls  int
	idled  time.Time // when it last went back to the pool
}

// fn returns the exported function name, cached (api.Function is per instance and not safe
// for concurrent use, which the pool rules out).
func (i *instance) fn(name string) api.Function {
	f, ok := i.funcs[name]
	if !ok {
		f = i.mod.ExportedFunction(name)
		i.funcs[name] = f
	}
	return f
}

func (i *instance) close(ctx context.Context) { _ = i.mod.Close(ctx) }

// pool bounds a plugin's instances. A token in sem stands for an instance in use or being
// created; idle instances wait in idle. Instances are created lazily and thrown away after
// a failure or MaxCalls calls.
type pool struct {
	sem  chan struct{}
	idle chan *instance
	make func(ctx context.Context) (*instance, error)

	mu     sync.Mutex
	closed bool

	created, discarded atomic.Uint64
	lastUse            atomic.Pointer[time.Time] // when an instance was last taken or returned
}

func newPool(size int, mk func(ctx context.Context) (*instance, error)) *pool {
	return &pool{sem: make(chan struct{}, size), idle: make(chan *instance, size), make: mk}
}

// get returns an idle instance or a new one, waiting for a free slot as long as ctx allows.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a plugin instance: %w", ctx.Err())
	}
	p.touch()
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	inst, err := p.make(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	p.created.Add(1)
	return inst, nil
}

// put returns a healthy instance.
func (p *pool) put(inst *instance) {
	inst.idled = p.touch()
	p.mu.Lock()
	keep := !p.closed
	if keep {
		select {
		case p.idle <- inst:
		default: // full: a get made a new instance while reap held the idle ones
			keep = false
		}
	}
	p.mu.Unlock()
	if !keep {
		inst.close(context.Background())
	}
	<-p.sem
}

// touch records a use of the pool now, and returns now.
func (p *pool) touch() time.Time {
	now := time.Now()
	p.lastUse.Store(&now)
	return now
}

// discard closes an instance that must not be used again.
func (p *pool) discard(inst *instance) {
	inst.close(context.Background())
	p.discarded.Add(1)
	<-p.sem
}

// reap closes the instances idle since before cutoff and returns how many. A get racing
// with it may make a new instance meanwhile; an instance that then finds the pool full
// is closed rather than blocking.
func (p *pool) reap(ctx context.Context, cutoff time.Time) int {
	var keep, old []*instance
	p.mu.Lock()
	for len(p.idle) > 0 {
		inst := <-p.idle
		if inst.idled.Before(cutoff) {
			old = append(old, inst)
		} else {
			keep = append(keep, inst)
		}
	}
	for _, inst := range keep {
		select {
		case p.idle <- inst:
		default:
			old = append(old, inst)
		}
	}
	p.mu.Unlock()
	for _, inst := range old {
		inst.close(ctx)
	}
	return len(old)
}

// unused tells whether the pool has no instance, idle, in use or being made.
func (p *pool) unused() bool { return len(p.sem) == 0 && len(p.idle) == 0 }

// idleSince tells whether no instance has been taken or returned since cutoff.
func (p *pool) idleSince(cutoff time.Time) bool {
	last := p.lastUse.Load()
	return last != nil && last.Before(cutoff)
}

// close closes the idle instances; instances in use are closed when they come back.
func (p *pool) close(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case inst := <-p.idle:
			inst.close(ctx)
		default:
			return
		}
	}
}

// newInstance instantiates the compiled plugin with its mounts pointing at the empty
// directory, real clocks, crypto randomness and stderr captured, then runs the guest's
// runtime initialisation (_initialize, for WASI reactors) so that calls find it ready. An
// instance outlives the call that needed it, so the caller's cancellation does not apply;
// CallTimeout bounds the initialisation.
func (pl *Plugin) newInstance(ctx context.Context) (*instance, error) {
	ctx = context.WithoutCancel(ctx)
	rt, compiled, err := pl.ensureCompiled(ctx)
	if err != nil {
		return nil, err
	}
	inst := &instance{
		kernel: newKernel(kernelMax),
		funcs:  map[string]api.Function{},
		in:     newMountFS(readOnlyDir(pl.reg.emptyDir)),
		out:    newMountFS(readOnlyDir(pl.reg.emptyDir)),
		stderr: &headBuffer{max: 2 << 10},
	}
	fsc := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(inst.in, abi.InDir)
	fsc = fsc.(sysfs.FSConfig).WithSysFSMount(inst.out, abi.OutDir)
	mc := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("%s#%d", filepath.Base(pl.path), pl.instances.Add(1))).
		WithStartFunctions().
		WithFSConfig(fsc).
		WithStderr(inst.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	mod, err := rt.InstantiateModule(ctx, compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	inst.mod = mod
	if init := mod.ExportedFunction("_initialize"); init != nil {
		ictx, cancel := context.WithTimeout(ctx, pl.limits.CallTimeout)
		defer cancel()
		cs := &callState{hostCtx: ictx, kernel: inst.kernel}
		if _, err := init.Call(context.WithValue(ictx, callKey{}, cs)); err != nil {
			inst.close(ctx)
			err = fmt.Errorf("%w: _initialize: %v", ErrTrap, err)
			if out := strings.TrimSpace(inst.stderr.take()); out != "" {
				err = fmt.Errorf("%w\nplugin stderr:\n%s", err, out)
			}
			return nil, err
		}
	}
	return inst, nil
}

// kernelMax bounds one instance's kernel memory: an input, an output and a host function's
// request and response at their limits, with room to spare.
const kernelMax = 4*abi.MaxMessageBytes + 8<<20

// headBuffer keeps the first max bytes written to it: the lines that explain a crash
// ("fatal error: out of memory", "panic: ...") come first, goroutine dumps after.
type headBuffer struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	room := h.max - len(h.buf)
	if room < len(p) {
		h.truncated = true
		if room < 0 {
			room = 0
		}
		h.buf = append(h.buf, p[:room]...)
		return len(p), nil
	}
	h.buf = append(h.buf, p...)
	return len(p), nil
}

func (h *headBuffer) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := string(h.buf)
	if h.truncated {
		s += "\n[...]"
	}
	h.buf, h.truncated = h.buf[:0], false
	return s
}
