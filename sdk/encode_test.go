package sdk

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

// sameJSON reports whether a and b decode to the same value.
func sameJSON(t *testing.T, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("hand-encoded JSON does not decode: %v\n%s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("encodings differ:\nhand: %s\njson: %s", a, b)
	}
}

func TestAppendEmitRequest(t *testing.T) {
	batch := []abi.DeclarativeContent{
		{Type: "x.file", Fields: json.RawMessage(`{"relative_path":"a \"b\"\\c\n\u0001é€\ud83d\ude00"}`),
			Artifacts: []abi.DeclarativeArtifact{{RelativePath: "a", URL: "http://h/a?x=1&y=<2>", SHA256: "00", Size: -0,
				Digests: map[string]string{"sha512": "ff", "md5": "ee"}, Deferred: true}, {RelativePath: "b", URL: "u", Size: 1 << 40}}},
		{Type: "x.tag", Fields: json.RawMessage("{ \"name\" : \"latest\" }"),
			Relations: []abi.Relation{{Name: "to", To: abi.ContentRef{Type: "x.file", Key: json.RawMessage(`{"id":1}`)},
				Fields: json.RawMessage(`{"os":"linux"}`)}, {Name: "no_fields", To: abi.ContentRef{Type: "x.file"}}}},
		{Type: "x.empty"},
	}
	want, err := json.Marshal(abi.EmitRequest{Content: batch})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, appendEmitRequest(nil, batch), want)
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x1f\x7f", "\xff\xfe invalid", "日本語", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json gives %q", s, back, wantBack)
		}
	})
}
