package sdk

import (
	"errors"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

// Malformed input is invalid_input even for an operation the plugin does not offer;
// well-formed input to it is unimplemented (spec section 6, the conformance kit).
func TestDecodeBeforeUnimplemented(t *testing.T) {
	saved := registered
	t.Cleanup(func() { registered = saved })
	registered = &plugin{Plugin: Plugin{Name: "bare"}, byName: map[string]*abi.ContentType{}}
	for name, h := range map[string]func([]byte) error{
		"sync":    func(b []byte) error { _, err := handleSync(nil, b); return err },
		"publish": func(b []byte) error { _, err := handlePublish(nil, b); return err },
		"upload":  func(b []byte) error { _, err := handleUpload(nil, b); return err },
	} {
		for in, want := range map[string]string{"this is not JSON": abi.CodeInvalidInput, "{}": abi.CodeUnimplemented} {
			var ae *abi.Error
			if err := toABI(h([]byte(in))); !errors.As(err, &ae) || ae.Code != want {
				t.Errorf("%s(%q): %v, want code %s", name, in, err, want)
			}
		}
	}
}
