package plugin

import (
	"errors"
	"fmt"
)

// Sentinel errors of plugin calls; test with errors.Is. A plugin's own error is an
// *abi.Error (errors.As).
var (
	// ErrTrap: the call trapped, exited, or failed without an error message. The instance
	// was discarded.
	ErrTrap = errors.New("plugin trapped")
	// ErrTimeout: the call ran past Options.CallTimeout and was aborted.
	ErrTimeout = errors.New("plugin call timed out")
	// ErrLimit: an input, output or host message passed an ABI limit.
	ErrLimit = errors.New("plugin message too large")
	// ErrClosed: the registry is closed.
	ErrClosed = errors.New("plugin registry closed")
)

// LoadError reports a plugin file that could not be loaded.
type LoadError struct {
	Path string
	Err  error
}

func (e *LoadError) Error() string { return fmt.Sprintf("plugin %s: %v", e.Path, e.Err) }

func (e *LoadError) Unwrap() error { return e.Err }

// CallError reports a failed export call, naming the plugin and the export.
type CallError struct {
	Plugin  string // name
	Version string
	Export  string
	Err     error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("plugin %s %s: %s: %v", e.Plugin, e.Version, e.Export, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }
