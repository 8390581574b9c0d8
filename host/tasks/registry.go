package tasks

import (
	"context"
	"fmt"
	"sort"
)

// Func is the code of a task. Returning an error fails the task; returning
// after ctx was canceled by a cancel request ends it canceled.
type Func func(ctx context.Context, t *Task) error

// Registry maps task names to their code. It is filled while the server is
// wired and read-only afterwards.
type Registry struct {
	funcs map[string]Func
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{funcs: map[string]Func{}} }

// Register adds a task; a duplicate name is a programming error.
func (r *Registry) Register(name string, fn Func) {
	if _, dup := r.funcs[name]; dup {
		panic(fmt.Sprintf("tasks: %q registered twice", name))
	}
	r.funcs[name] = fn
}

// Names lists the registered task names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
