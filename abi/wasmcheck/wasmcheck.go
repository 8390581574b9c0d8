// Package wasmcheck checks a WebAssembly binary against the static rules of the Pulpo plugin
// ABI (abi/spec/v1.md, "Module format") without running it: the version marker, the required
// exports and their types, and that every import is something a host provides.
//
// It reads only the type, import, function and export sections, so checking a 2.5 MB Go
// plugin takes microseconds and no WebAssembly runtime is needed: the host runs it before
// compiling, and the conformance kit (abi/abitest) before anything else.
//
// Package wasmcheck imports only the standard library and package abi.
package wasmcheck

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pulpo/pulpo/abi"
)

// Kinds of imports and exports.
const (
	KindFunc   = "func"
	KindTable  = "table"
	KindMemory = "memory"
	KindGlobal = "global"
	KindTag    = "tag"
)

// Import is one entry of the import section.
type Import struct {
	Module, Name, Kind string
	// Sig is the function type when Kind is KindFunc.
	Sig abi.Signature
}

// Export is one entry of the export section.
type Export struct {
	Name, Kind string
	// Sig is the function type when Kind is KindFunc.
	Sig abi.Signature
}

// Module lists a binary's imports and exports.
type Module struct {
	Imports []Import
	Exports []Export
}

// Export returns the export called name.
func (m *Module) Export(name string) (Export, bool) {
	for _, e := range m.Exports {
		if e.Name == name {
			return e, true
		}
	}
	return Export{}, false
}

// Result is what Check learned about a valid plugin module.
type Result struct {
	// Version is the ABI version named by the module's marker export.
	Version abi.Version
	// Exports holds the callable ABI exports the module provides (describe, ...).
	Exports []string
}

// Has reports whether the module provides the callable export name.
func (r Result) Has(name string) bool {
	for _, e := range r.Exports {
		if e == name {
			return true
		}
	}
	return false
}

// ParseAndCheck parses wasm and checks it against a host implementing version host.
func ParseAndCheck(wasm []byte, host abi.Version) (Result, error) {
	m, err := Parse(wasm)
	if err != nil {
		return Result{}, err
	}
	return Check(m, host)
}

// Check applies the module rules of the spec for a host implementing version host. It
// reports every problem found, joined; the first is the most fundamental (the version).
func Check(m *Module, host abi.Version) (Result, error) {
	var errs []error
	res := Result{}

	// The marker comes first: with the wrong version, every other check is moot.
	markers := map[int][]abi.Version{}
	for _, e := range m.Exports {
		if v, ok := abi.ParseMarker(e.Name); ok && e.Kind == KindFunc {
			markers[v.Major] = append(markers[v.Major], v)
			if !e.Sig.Equal(abi.MarkerSignature()) {
				errs = append(errs, fmt.Errorf("marker export %s has type %s, want %s", e.Name, e.Sig, abi.MarkerSignature()))
			}
		}
	}
	mine := markers[host.Major]
	switch {
	case len(markers) == 0:
		return res, fmt.Errorf("no ABI version marker export (%s<major>_<minor>): not a Pulpo plugin", abi.MarkerPrefix)
	case len(mine) == 0:
		var found []string
		for _, vs := range markers {
			for _, v := range vs {
				found = append(found, v.String())
			}
		}
		sort.Strings(found)
		return res, fmt.Errorf("built for ABI %s, host provides %s", strings.Join(found, ", "), host)
	case len(mine) > 1:
		return res, fmt.Errorf("%d version markers for ABI major %d; a module exports one per major", len(mine), host.Major)
	case !host.Supports(mine[0]):
		return res, fmt.Errorf("needs ABI %s, host provides %s", mine[0], host)
	}
	res.Version = mine[0]

	// The plugin is the version its marker names (spec 3.1): an export a later minor
	// added means nothing to a host of that version, so none calls it, and a host
	// function a later minor added could not be linked by one, so it is refused.
	newer := func(name string) bool {
		since, _ := abi.Since(name)
		return since > res.Version.Minor
	}
	for _, name := range []string{abi.ExportDescribe, abi.ExportSyncFirstStage, abi.ExportPublish, abi.ExportHandleRoute, abi.ExportContentFromUpload} {
		e, ok := m.Export(name)
		switch {
		case ok && newer(name):
		case !ok && name == abi.ExportDescribe:
			errs = append(errs, fmt.Errorf("missing required export %s", name))
		case !ok:
		case e.Kind != KindFunc:
			errs = append(errs, fmt.Errorf("export %s is a %s, want a function", name, e.Kind))
		case !e.Sig.Equal(abi.ExportSignature()):
			errs = append(errs, fmt.Errorf("export %s has type %s, want %s", name, e.Sig, abi.ExportSignature()))
		default:
			res.Exports = append(res.Exports, name)
		}
	}

	if _, cmd := m.Export("_start"); cmd {
		if _, reactor := m.Export("_initialize"); !reactor {
			errs = append(errs, errors.New("a WASI command module (exports _start, not _initialize): build a reactor "+
				"(Go: -buildmode=c-shared; clang: -mexec-model=reactor)"))
		}
	}

	hostFns, kernelFns := abi.HostFunctions(), abi.KernelFunctions()
	for _, im := range m.Imports {
		at := im.Module + "." + im.Name
		if im.Kind != KindFunc {
			errs = append(errs, fmt.Errorf("imports %s %s: a host provides only functions", im.Kind, at))
			continue
		}
		var want abi.Signature
		var ok bool
		switch {
		case im.Module == abi.WASINamespace:
			continue
		case im.Module == abi.HostNamespace:
			if want, ok = hostFns[im.Name]; !ok {
				errs = append(errs, fmt.Errorf("imports %s: not a host function of ABI %s", at, host))
				continue
			}
			if newer(im.Name) {
				since, _ := abi.Since(im.Name)
				errs = append(errs, fmt.Errorf("imports %s, added in ABI %d.%d, but the plugin is built for %s (its marker)",
					at, res.Version.Major, since, res.Version))
				continue
			}
		case im.Module == abi.KernelNamespace:
			if want, ok = kernelFns[im.Name]; !ok {
				errs = append(errs, fmt.Errorf("imports %s: not an Extism kernel function", at))
				continue
			}
		case strings.HasPrefix(im.Module, "pulpo:host/"):
			errs = append(errs, fmt.Errorf("imports %s: host namespace of another ABI major (host provides %s)", at, abi.HostNamespace))
			continue
		default:
			errs = append(errs, fmt.Errorf("imports %s: unknown module %q", at, im.Module))
			continue
		}
		if !im.Sig.Equal(want) {
			errs = append(errs, fmt.Errorf("imports %s with type %s, want %s", at, im.Sig, want))
		}
	}
	return res, errors.Join(errs...)
}

// Parse reads the imports and exports of a WebAssembly 1.0 binary.
func Parse(wasm []byte) (*Module, error) {
	r := &reader{b: wasm}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (bad magic)")
	}
	if wasm[4] != 1 || wasm[5] != 0 || wasm[6] != 0 || wasm[7] != 0 {
		return nil, fmt.Errorf("WebAssembly binary version %d: want 1 (a core module, not a component)", wasm[4])
	}
	r.off = 8
	var (
		types   []abi.Signature
		funcs   []uint32 // type index per function, imported first
		m       = &Module{}
		exports []struct {
			name string
			kind byte
			idx  uint32
		}
	)
	for r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			break
		}
		end := r.off + int(size)
		if end > len(r.b) || end < r.off {
			return nil, fmt.Errorf("section %d runs past the end of the binary", id)
		}
		sec := &reader{b: r.b[:end], off: r.off}
		switch id {
		case 1: // type
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				if form := sec.byte(); form != 0x60 {
					return nil, fmt.Errorf("type section: form 0x%x is not a function type", form)
				}
				types = append(types, abi.Signature{Params: sec.valTypes(), Results: sec.valTypes()})
			}
		case 2: // import
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				im := Import{Module: sec.name(), Name: sec.name()}
				switch kind := sec.byte(); kind {
				case 0:
					ti := sec.u32()
					funcs = append(funcs, ti)
					im.Kind = KindFunc
					if int(ti) < len(types) {
						im.Sig = types[ti]
					} else {
						sec.fail("import %s.%s: type index %d out of range", im.Module, im.Name, ti)
					}
				case 1:
					im.Kind = KindTable
					sec.byte()
					sec.limits()
				case 2:
					im.Kind = KindMemory
					sec.limits()
				case 3:
					im.Kind = KindGlobal
					sec.byte()
					sec.byte()
				case 4:
					im.Kind = KindTag
					sec.byte()
					sec.u32()
				default:
					sec.fail("import %s.%s: unknown kind %d", im.Module, im.Name, kind)
				}
				m.Imports = append(m.Imports, im)
			}
		case 3: // function
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				funcs = append(funcs, sec.u32())
			}
		case 7: // export
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				e := struct {
					name string
					kind byte
					idx  uint32
				}{name: sec.name(), kind: sec.byte(), idx: sec.u32()}
				exports = append(exports, e)
			}
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, sec.err)
		}
		r.off = end
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, e := range exports {
		ex := Export{Name: e.name}
		switch e.kind {
		case 0:
			ex.Kind = KindFunc
			if int(e.idx) >= len(funcs) || int(funcs[e.idx]) >= len(types) {
				return nil, fmt.Errorf("export %s: function index %d out of range", e.name, e.idx)
			}
			ex.Sig = types[funcs[e.idx]]
		case 1:
			ex.Kind = KindTable
		case 2:
			ex.Kind = KindMemory
		case 3:
			ex.Kind = KindGlobal
		case 4:
			ex.Kind = KindTag
		default:
			return nil, fmt.Errorf("export %s: unknown kind %d", e.name, e.kind)
		}
		m.Exports = append(m.Exports, ex)
	}
	return m, nil
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end at offset %d", r.off)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 integer too long at offset %d", r.off)
	return 0
}

func (r *reader) name() string {
	n := int(r.u32())
	if r.err != nil {
		return ""
	}
	if n > len(r.b)-r.off {
		r.fail("name of %d bytes runs past the section", n)
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *reader) valTypes() []abi.ValueType {
	n := r.u32()
	if r.err != nil || int(n) > len(r.b)-r.off {
		r.fail("bad value type vector")
		return nil
	}
	var out []abi.ValueType
	for ; n > 0; n-- {
		out = append(out, abi.ValueType(r.byte()))
	}
	return out
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}
