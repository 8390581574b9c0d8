package plugin

import (
	"context"
	"fmt"
	"time"
)

// BenchInstance creates an instance outside the pool (which runs the guest's _initialize),
// optionally runs one call of export with input on it, and closes it. It returns the time
// taken by instantiation and by the call. For benchmarks.
func (p *Plugin) BenchInstance(ctx context.Context, export string, input []byte) (inst, call time.Duration, err error) {
	start := time.Now()
	in, err := p.newInstance(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer in.close(ctx)
	inst = time.Since(start)
	if export == "" {
		return inst, 0, nil
	}
	start = time.Now()
	cs := &callState{hostCtx: ctx, kernel: in.kernel}
	rc, err := p.invoke(context.WithValue(ctx, callKey{}, cs), in, export, input)
	if err == nil && rc != 0 {
		err = fmt.Errorf("rc %d", rc)
	}
	return inst, time.Since(start), err
}
