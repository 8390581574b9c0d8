package wasmcheck_test

import (
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/abi/wasmcheck"
)

// module assembles a minimal valid WebAssembly binary from function imports and exported
// functions whose bodies return zero.
type module struct {
	imports []wasmcheck.Import
	exports []wasmcheck.Export
	memory  bool // import a memory, which the ABI forbids
}

func uleb(v uint32) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func str(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func vec(items [][]byte) []byte {
	out := uleb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(body)))...), body...)
}

func (m module) bytes() []byte {
	var types []abi.Signature
	typeIndex := func(s abi.Signature) uint32 {
		for i, t := range types {
			if t.Equal(s) {
				return uint32(i)
			}
		}
		types = append(types, s)
		return uint32(len(types) - 1)
	}
	var imps, funcs, exps, codes [][]byte
	for _, im := range m.imports {
		imps = append(imps, append(append(str(im.Module), str(im.Name)...), append([]byte{0}, uleb(typeIndex(im.Sig))...)...))
	}
	if m.memory {
		imps = append(imps, append(append(str("env"), str("memory")...), 2, 0, 1))
	}
	for i, e := range m.exports {
		funcs = append(funcs, uleb(typeIndex(e.Sig)))
		exps = append(exps, append(str(e.Name), append([]byte{0}, uleb(uint32(len(m.imports)+i))...)...))
		body := []byte{0}
		for _, r := range e.Sig.Results {
			switch r {
			case abi.I32:
				body = append(body, 0x41, 0)
			case abi.I64:
				body = append(body, 0x42, 0)
			}
		}
		body = append(body, 0x0b)
		codes = append(codes, append(uleb(uint32(len(body))), body...))
	}
	var typeBytes [][]byte
	for _, t := range types {
		b := []byte{0x60}
		b = append(b, uleb(uint32(len(t.Params)))...)
		for _, p := range t.Params {
			b = append(b, byte(p))
		}
		b = append(b, uleb(uint32(len(t.Results)))...)
		for _, r := range t.Results {
			b = append(b, byte(r))
		}
		typeBytes = append(typeBytes, b)
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = append(out, section(1, vec(typeBytes))...)
	out = append(out, section(2, vec(imps))...)
	out = append(out, section(3, vec(funcs))...)
	out = append(out, section(7, vec(exps))...)
	out = append(out, section(10, vec(codes))...)
	return out
}

var (
	export  = abi.ExportSignature()
	marker  = abi.MarkerSignature()
	fetch   = abi.HostFunctions()[abi.HostFetch]
	kAlloc  = abi.KernelFunctions()["alloc"]
	wasiSig = abi.Signature{Params: []abi.ValueType{abi.I32}}
)

func good() module {
	return module{
		imports: []wasmcheck.Import{
			{Module: abi.KernelNamespace, Name: "alloc", Sig: kAlloc},
			{Module: abi.HostNamespace, Name: abi.HostFetch, Sig: fetch},
			{Module: abi.WASINamespace, Name: "proc_exit", Sig: wasiSig},
		},
		exports: []wasmcheck.Export{
			{Name: "pulpo_abi_version_1_0", Sig: marker},
			{Name: abi.ExportDescribe, Sig: export},
			{Name: abi.ExportSyncFirstStage, Sig: export},
			{Name: "helper", Sig: abi.Signature{Params: []abi.ValueType{abi.I32}}},
		},
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	m, err := wasmcheck.Parse(good().bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Imports) != 3 || m.Imports[1].Name != "fetch" || !m.Imports[1].Sig.Equal(fetch) {
		t.Fatalf("imports: %+v", m.Imports)
	}
	if e, ok := m.Export("describe"); !ok || !e.Sig.Equal(export) || e.Kind != wasmcheck.KindFunc {
		t.Fatalf("describe export: %+v", e)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	res, err := wasmcheck.ParseAndCheck(good().bytes(), abi.Current())
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != (abi.Version{Major: 1}) || !res.Has("describe") || !res.Has("sync_first_stage") || res.Has("publish") {
		t.Fatalf("result: %+v", res)
	}

	tests := []struct {
		name   string
		mutate func(m *module)
		host   abi.Version
		want   string
	}{
		{"no marker", func(m *module) { m.exports = m.exports[1:] }, abi.Current(), "no ABI version marker"},
		{"other major", func(m *module) { m.exports[0].Name = "pulpo_abi_version_2_0" }, abi.Current(), "built for ABI 2.0, host provides 1.1"},
		{"newer minor", func(m *module) { m.exports[0].Name = "pulpo_abi_version_1_3" }, abi.Version{Major: 1, Minor: 2}, "needs ABI 1.3, host provides 1.2"},
		{"two markers", func(m *module) {
			m.exports = append(m.exports, wasmcheck.Export{Name: "pulpo_abi_version_1_1", Sig: marker})
		}, abi.Version{Major: 1, Minor: 1}, "2 version markers"},
		{"marker type", func(m *module) { m.exports[0].Sig = export }, abi.Current(), "marker export pulpo_abi_version_1_0 has type () -> (i32)"},
		{"missing describe", func(m *module) { m.exports = append(m.exports[:1], m.exports[2:]...) }, abi.Current(), "missing required export describe"},
		{"export type", func(m *module) { m.exports[2].Sig = marker }, abi.Current(), "export sync_first_stage has type () -> ()"},
		{"unknown host function", func(m *module) { m.imports[1].Name = "fetch_all" }, abi.Current(), "pulpo:host/v1.fetch_all: not a host function"},
		{"host function type", func(m *module) { m.imports[1].Sig = kAlloc; m.imports[1].Sig.Results = nil }, abi.Current(), "want (i64) -> (i64)"},
		{"v2 namespace", func(m *module) { m.imports[1].Module = "pulpo:host/v2" }, abi.Current(), "another ABI major"},
		{"unknown module", func(m *module) { m.imports[1].Module = "env" }, abi.Current(), `unknown module "env"`},
		{"host function of a later minor", func(m *module) {
			m.imports = append(m.imports, wasmcheck.Import{Module: abi.HostNamespace, Name: abi.HostArtifactRead, Sig: fetch})
		}, abi.Current(), "imports pulpo:host/v1.artifact_read, added in ABI 1.1, but the plugin is built for 1.0"},
		{"extism user", func(m *module) { m.imports[0].Name = "http_get" }, abi.Current(), "not an Extism kernel function"},
		{"memory import", func(m *module) { m.memory = true }, abi.Current(), "imports memory env.memory"},
		{"command module", func(m *module) {
			m.exports = append(m.exports, wasmcheck.Export{Name: "_start", Sig: marker})
		}, abi.Current(), "build a reactor (Go: -buildmode=c-shared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := good()
			m.exports = append([]wasmcheck.Export(nil), m.exports...)
			m.imports = append([]wasmcheck.Import(nil), m.imports...)
			tt.mutate(&m)
			_, err := wasmcheck.ParseAndCheck(m.bytes(), tt.host)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	valid := good().bytes()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("(module)"),
		"component": []byte("\x00asm\x0d\x00\x01\x00"),
		"truncated": valid[:len(valid)-3],
	} {
		if _, err := wasmcheck.Parse(b); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(good().bytes())
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x07\x05\x01\x01a\x00\x09"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wasmcheck.Parse(b)
		if err == nil {
			_, _ = wasmcheck.Check(m, abi.Current())
		}
	})
}

// TestCheckMinorVersions: a host runs the plugins of every earlier minor, each as the
// version its marker names: a 1.0 module's content_from_upload is not offered (1.1 added
// it), a 1.1 module's is, and a 1.1 module may import artifact_read.
func TestCheckMinorVersions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		marker     string
		wantUpload bool
	}{{"pulpo_abi_version_1_0", false}, {"pulpo_abi_version_1_1", true}} {
		m := good()
		m.exports = append([]wasmcheck.Export{{Name: tt.marker, Sig: marker}}, m.exports[1:]...)
		m.exports = append(m.exports, wasmcheck.Export{Name: abi.ExportContentFromUpload, Sig: export})
		if tt.wantUpload {
			m.imports = append(m.imports, wasmcheck.Import{Module: abi.HostNamespace, Name: abi.HostArtifactRead, Sig: fetch})
		}
		res, err := wasmcheck.ParseAndCheck(m.bytes(), abi.Version{Major: 1, Minor: 1})
		if err != nil {
			t.Fatalf("%s: %v", tt.marker, err)
		}
		if res.Has(abi.ExportContentFromUpload) != tt.wantUpload || !res.Has(abi.ExportDescribe) {
			t.Errorf("%s: exports %v", tt.marker, res.Exports)
		}
	}
}
