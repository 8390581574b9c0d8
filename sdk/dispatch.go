package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// The four export handlers. Each decodes its input, runs the plugin's function with a fresh
// context, and encodes the output; errors and panics become *abi.Error.

func handleDescribe(_ bridge.Host, input []byte) ([]byte, error) {
	if len(input) > 0 {
		var req abi.DescribeRequest
		if err := json.Unmarshal(input, &req); err != nil {
			return nil, Errorf(abi.CodeInvalidInput, "describe request: %v", err)
		}
	}
	return json.Marshal(registered.describe)
}

// The input is decoded before the handler's presence is checked: malformed input is
// invalid_input whatever the plugin offers (spec section 6).

func handleSync(h bridge.Host, input []byte) (out []byte, err error) {
	var req abi.SyncRequest
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, Errorf(abi.CodeInvalidInput, "sync request: %v", err)
	}
	if registered.Sync == nil {
		return nil, Errorf(abi.CodeUnimplemented, "plugin %s does not sync", registered.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Sync{
		Remote: req.Remote, Repository: req.Repository, Mirror: req.Mirror, InDir: req.InDir,
		Log: newLogger(h), p: registered, host: h, cancel: cancel, options: req.Options,
	}
	err = guard(func() error {
		if err := registered.Sync(ctx, s); err != nil {
			return err
		}
		return s.Flush(ctx)
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(s.resp)
}

func handlePublish(h bridge.Host, input []byte) ([]byte, error) {
	var req abi.PublishRequest
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, Errorf(abi.CodeInvalidInput, "publish request: %v", err)
	}
	if registered.Publish == nil {
		return nil, Errorf(abi.CodeUnimplemented, "plugin %s does not publish", registered.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &Publish{
		Publication: req.Publication, Repository: req.Repository, Version: req.Version,
		InDir: req.InDir, OutDir: req.OutDir, Log: newLogger(h),
		host: h, cancel: cancel, contentPath: req.ContentPath,
	}
	err := guard(func() error {
		err := registered.Publish(ctx, p)
		if ferr := p.finish(); err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(p.resp)
}

func handleRoute(h bridge.Host, input []byte) ([]byte, error) {
	var req abi.RouteRequest
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, Errorf(abi.CodeInvalidInput, "route request: %v", err)
	}
	rt, ok := match(registered.Routes, req.Path)
	if !ok || rt.Handle == nil {
		return nil, Errorf(abi.CodeNotFound, "no route for %s", req.Path)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Request{RouteRequest: req, Log: newLogger(h), host: h, cancel: cancel}
	var resp abi.RouteResponse
	err := guard(func() error {
		var err error
		resp, err = rt.Handle(ctx, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// guard runs f and turns a panic into an internal error carrying the stack.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &abi.Error{Code: abi.CodeInternal, Message: fmt.Sprintf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	return f()
}

// wire wraps a handler so that its error is always an *abi.Error, as the host will see it.
func wire(h bridge.Handler) bridge.Handler {
	return func(host bridge.Host, input []byte) ([]byte, error) {
		out, err := h(host, input)
		if err != nil {
			return nil, toABI(err)
		}
		if len(out) > abi.MaxMessageBytes {
			return nil, Errorf(abi.CodeLimitExceeded, "output of %d bytes exceeds %d", len(out), abi.MaxMessageBytes)
		}
		return out, nil
	}
}
