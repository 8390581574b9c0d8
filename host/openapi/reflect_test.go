package openapi

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

type owned struct {
	PulpHref    string    `json:"pulp_href" readOnly:"true" format:"uri" doc:"The href."`
	PulpCreated time.Time `json:"pulp_created" readOnly:"true"`
	Name        string    `json:"name" doc:"shadowed by the outer Name"`
}

type Extra struct {
	Note string `json:"note,omitempty"`
}

type child struct {
	Path string `json:"relative_path"`
}

type uuidLike [16]byte

func (uuidLike) MarshalText() ([]byte, error) { return nil, nil }

type sample struct {
	owned
	*Extra
	Name        string            `json:"name" doc:"A unique name."`
	Description *string           `json:"description"`
	Retain      *int64            `json:"retain_repo_versions,omitempty"`
	Policy      string            `json:"policy,omitempty" enum:"immediate,on_demand,streamed"`
	Codes       []int             `json:"codes,omitempty" enum:"1,2"`
	Labels      map[string]string `json:"pulp_labels,omitempty"`
	Tags        []string          `json:"tags"`
	Count       int               `json:"count"`
	Size        int64             `json:"size"`
	Small       uint8             `json:"small"`
	Ratio       float64           `json:"ratio"`
	OK          bool              `json:"ok"`
	Quoted      int               `json:"quoted,string"`
	Password    string            `json:"password,omitempty" writeOnly:"true"`
	Raw         json.RawMessage   `json:"raw,omitempty"`
	Anything    any               `json:"anything,omitzero"`
	Blob        []byte            `json:"blob"`
	ID          uuidLike          `json:"id"`
	Child       child             `json:"child"`
	Children    []child           `json:"children,omitempty"`
	Finished    *time.Time        `json:"finished_at"`
	Skipped     string            `json:"-"`
	unexported  string
	NoTag       string
}

func TestSchemaOf(t *testing.T) {
	t.Parallel()
	s := SchemaOf(&sample{})
	tests := []struct {
		prop string
		want string // JSON of the property's schema; "" for absent
	}{
		{"pulp_href", `{"type":"string","format":"uri","description":"The href.","readOnly":true}`},
		{"pulp_created", `{"type":"string","format":"date-time","readOnly":true}`},
		{"note", `{"type":"string"}`},
		{"name", `{"type":"string","description":"A unique name."}`},
		{"description", `{"type":"string","nullable":true}`},
		{"retain_repo_versions", `{"type":"integer","format":"int64","nullable":true}`},
		{"policy", `{"type":"string","enum":["immediate","on_demand","streamed"]}`},
		{"codes", `{"type":"array","items":{"type":"integer","enum":[1,2]}}`},
		{"pulp_labels", `{"type":"object","additionalProperties":{"type":"string"}}`},
		{"tags", `{"type":"array","items":{"type":"string"}}`},
		{"count", `{"type":"integer"}`},
		{"size", `{"type":"integer","format":"int64"}`},
		{"small", `{"type":"integer","minimum":0}`},
		{"ratio", `{"type":"number","format":"double"}`},
		{"ok", `{"type":"boolean"}`},
		{"quoted", `{"type":"string"}`},
		{"password", `{"type":"string","writeOnly":true}`},
		{"raw", `{}`},
		{"anything", `{}`},
		{"blob", `{"type":"string","format":"byte"}`},
		{"id", `{"type":"string"}`},
		{"child", `{"type":"object","properties":{"relative_path":{"type":"string"}},"required":["relative_path"]}`},
		{"children", `{"type":"array","items":{"type":"object","properties":{"relative_path":{"type":"string"}},"required":["relative_path"]}}`},
		{"finished_at", `{"type":"string","format":"date-time","nullable":true}`},
		{"NoTag", `{"type":"string"}`},
		{"Skipped", ""},
		{"-", ""},
		{"unexported", ""},
		{"owned", ""},
		{"Extra", ""},
	}
	for _, tt := range tests {
		t.Run(tt.prop, func(t *testing.T) {
			t.Parallel()
			p, ok := s.Properties[tt.prop]
			if tt.want == "" {
				if ok {
					t.Fatalf("property %q present, want absent", tt.prop)
				}
				return
			}
			if !ok {
				t.Fatalf("property %q missing", tt.prop)
			}
			if got := mustJSON(t, p); got != tt.want {
				t.Errorf("schema\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("required", func(t *testing.T) {
		t.Parallel()
		want := []string{"pulp_href", "pulp_created", "name", "description", "tags", "count", "size",
			"small", "ratio", "ok", "quoted", "blob", "id", "child", "finished_at", "NoTag"}
		if !slices.Equal(s.Required, want) {
			t.Errorf("required\n got %q\nwant %q", s.Required, want)
		}
		if len(s.Properties) != len(tests)-5 {
			t.Errorf("%d properties, want %d", len(s.Properties), len(tests)-5)
		}
	})
}

type node struct {
	Name     string `json:"name"`
	Children []node `json:"children"`
	Parent   *node  `json:"parent" doc:"The parent node."`
}

type Page[T any] struct {
	Items []T `json:"items"`
}

func TestSchemaOfRecursive(t *testing.T) {
	t.Parallel()
	inline := SchemaOf(node{})
	if got, want := mustJSON(t, inline.Properties["children"].Items), `{"type":"object"}`; got != want {
		t.Errorf("recurring type: got %s, want %s", got, want)
	}

	b := NewBuilder(Info{Title: "t", Version: "v3"})
	ref := b.SchemaOf("Node", node{})
	page := b.SchemaOf("NodePage", Page[node]{})
	d := b.Doc()
	if err := Validate(d); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ got, want string }{
		{mustJSON(t, ref), `{"$ref":"#/components/schemas/Node"}`},
		{mustJSON(t, page), `{"$ref":"#/components/schemas/NodePage"}`},
		{mustJSON(t, d.Components.Schemas["Node"].Properties["children"]), `{"type":"array","items":{"$ref":"#/components/schemas/Node"}}`},
		{mustJSON(t, d.Components.Schemas["Node"].Properties["parent"]), `{"description":"The parent node.","nullable":true,"allOf":[{"$ref":"#/components/schemas/Node"}]}`},
		{mustJSON(t, d.Components.Schemas["NodePage"].Properties["items"]), `{"type":"array","items":{"$ref":"#/components/schemas/Node"}}`},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
	if n := len(d.Components.Schemas); n != 2 {
		t.Errorf("%d components, want 2: %v", n, slices.Sorted(maps.Keys(d.Components.Schemas)))
	}
}

func TestBuilderSchemaOfModes(t *testing.T) {
	t.Parallel()
	type repo struct {
		Href   string `json:"pulp_href" readOnly:"true"`
		Name   string `json:"name"`
		Remote *child `json:"remote,omitempty"`
	}
	b := NewBuilder(Info{Title: "t", Version: "v3"})
	b.SchemaOf("RepositoryResponse", repo{})
	b.RequestOf("Repository", repo{})
	d := b.Doc()
	if err := Validate(d); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
	}{
		{"RepositoryResponse", `{"type":"object","properties":{"name":{"type":"string"},"pulp_href":{"type":"string","readOnly":true},"remote":{"nullable":true,"allOf":[{"$ref":"#/components/schemas/child"}]}},"required":["pulp_href","name"]}`},
		{"Repository", `{"type":"object","properties":{"name":{"type":"string"},"remote":{"nullable":true,"allOf":[{"$ref":"#/components/schemas/childRequest"}]}},"required":["name"]}`},
		{"child", `{"type":"object","properties":{"relative_path":{"type":"string"}},"required":["relative_path"]}`},
		{"childRequest", `{"type":"object","properties":{"relative_path":{"type":"string"}},"required":["relative_path"]}`},
	}
	for _, tt := range tests {
		if got := mustJSON(t, d.Components.Schemas[tt.name]); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestBuilderSchemaOfClash(t *testing.T) {
	t.Parallel()
	type other struct {
		Different int `json:"different"`
	}
	b := NewBuilder(Info{Title: "t", Version: "v3"})
	b.SchemaOf("Thing", child{})
	b.SchemaOf("Thing", child{}) // same type again: fine
	if err := Validate(b.Doc()); err != nil {
		t.Fatalf("re-registering the same type: %v", err)
	}
	b.SchemaOf("Thing", other{})
	if err := Validate(b.Doc()); err == nil {
		t.Fatal("two types under one name: no error")
	}
}

func TestGoName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[child](), "child"},
		{reflect.TypeFor[Page[node]](), "Pagenode"},
		{reflect.TypeFor[Page[Extra]](), "PageExtra"},
	}
	for _, tt := range tests {
		if got := goName(tt.t); got != tt.want {
			t.Errorf("goName(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
