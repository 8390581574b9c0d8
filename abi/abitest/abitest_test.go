package abitest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/abi/abitest"
	"github.com/pulpo/pulpo/abi/wasmcheck"
)

const validDescribe = `{"abi_version":"1.0","name":"x","version":"1","content_types":[
 {"name":"x.y","fields":[{"name":"id","type":"string","required":true}],"natural_key":["id"],"artifacts":{"count":"none"}}],
 "remote_types":[{"name":"x.r"}]}`

func TestCheckDescribe(t *testing.T) {
	t.Parallel()
	withSync := wasmcheck.Result{Version: abi.Version{Major: 1}, Exports: []string{"describe", "sync_first_stage"}}
	if _, err := abitest.CheckDescribe([]byte(validDescribe), withSync); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
		mod  wasmcheck.Result
		want string
	}{
		{"not json", "nope", withSync, "does not decode"},
		{"invalid", `{"abi_version":"1.0","name":"X"}`, withSync, "describe is invalid"},
		{"version mismatch", validDescribe, wasmcheck.Result{Version: abi.Version{Major: 1, Minor: 1}, Exports: withSync.Exports}, "marker export says 1.1"},
		{"missing sync", validDescribe, wasmcheck.Result{Version: abi.Version{Major: 1}, Exports: []string{"describe"}}, "obliges export sync_first_stage"},
	}
	for _, tt := range tests {
		if _, err := abitest.CheckDescribe([]byte(tt.out), tt.mod); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckError(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("call: %w", abi.NewError(abi.CodeInvalidInput, "bad json"))
	if err := abitest.CheckError(wrapped, abi.CodeInvalidInput); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{nil, errors.New("trap"), abi.NewError(abi.CodeInternal, "x"), abi.NewError(abi.CodeInvalidInput, "")} {
		if abitest.CheckError(err, abi.CodeInvalidInput) == nil {
			t.Errorf("CheckError(%v) passed", err)
		}
	}
}
