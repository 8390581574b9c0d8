package openapi

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	str := &Schema{Type: "string"}
	// valid returns a fresh document that passes; each case breaks one thing.
	valid := func() *Doc {
		return &Doc{
			OpenAPI: Version,
			Info:    Info{Title: "t", Version: "v3"},
			Paths: map[string]*PathItem{
				"/a/{id}/": {Get: &Operation{
					ID:        "a_read",
					Params:    []Param{PathParam("id", "")},
					Responses: map[int]Response{200: {Description: "OK", Schema: Ref("A")}, 204: {Description: "Gone"}},
				}},
			},
			Components: Components{Schemas: map[string]*Schema{"A": {Type: "object", Properties: map[string]*Schema{"b": Nullable(Ref("B"))}}, "B": str}},
		}
	}
	op := func(d *Doc) *Operation { return d.Paths["/a/{id}/"].Get }
	tests := []struct {
		name    string
		breakIt func(d *Doc)
		wantErr string // "" for a valid document
	}{
		{"valid", func(*Doc) {}, ""},
		{"missing description", func(d *Doc) {
			op(d).Responses[200] = Response{Schema: str}
		}, "GET /a/{id}/ (a_read): response 200: missing description"},
		{"missing schema", func(d *Doc) {
			op(d).Responses[201] = Response{Description: "Created"}
		}, "response 201: missing schema"},
		{"schema on 204", func(d *Doc) {
			op(d).Responses[204] = Response{Description: "Gone", Schema: str}
		}, "response 204: has a schema"},
		{"no responses", func(d *Doc) { op(d).Responses = nil }, "no responses"},
		{"dangling ref in response", func(d *Doc) {
			op(d).Responses[200] = Response{Description: "OK", Schema: &Schema{Type: "array", Items: Ref("Missing")}}
		}, `response 200[]: dangling $ref "#/components/schemas/Missing"`},
		{"dangling ref in component", func(d *Doc) {
			delete(d.Components.Schemas, "B")
		}, `components/schemas/A.b: dangling $ref "#/components/schemas/B"`},
		{"foreign ref", func(d *Doc) {
			d.Components.Schemas["B"] = &Schema{Ref: "other.json#/B"}
		}, "dangling $ref"},
		{"undeclared path param", func(d *Doc) { op(d).Params = nil }, `path parameter "id" not declared`},
		{"optional path param", func(d *Doc) { op(d).Params[0].Required = false }, "must be required"},
		{"path param not in path", func(d *Doc) {
			op(d).Params = append(op(d).Params, PathParam("other", ""))
		}, `path parameter "other": not in the path`},
		{"param without schema", func(d *Doc) {
			op(d).Params = append(op(d).Params, Param{Name: "q", In: "query"})
		}, `query parameter "q": missing schema`},
		{"bad param location", func(d *Doc) {
			op(d).Params = append(op(d).Params, Param{Name: "c", In: "cookie", Schema: str})
		}, "in must be query, path or header"},
		{"duplicate operationId", func(d *Doc) {
			d.Paths["/b/"] = &PathItem{Post: &Operation{ID: "a_read", Responses: map[int]Response{204: {Description: "x"}}}}
		}, `duplicate operationId "a_read"`},
		{"empty body", func(d *Doc) { op(d).Body = &Body{} }, "request body has no content"},
		{"bad additionalProperties", func(d *Doc) {
			d.Components.Schemas["B"] = &Schema{Type: "object", AdditionalProperties: "yes"}
		}, "additionalProperties is string"},
		{"unknown security scheme", func(d *Doc) {
			d.Security = []SecurityRequirement{{"basicAuth": nil}}
		}, `unknown security scheme "basicAuth"`},
		{"wrong version", func(d *Doc) { d.OpenAPI = "3.1.0" }, `version "3.1.0"`},
		{"bad extension", func(d *Doc) { d.Info.Extensions = map[string]any{"logo": 1} }, "must start with x-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := valid()
			tt.breakIt(d)
			err := Validate(d)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateBuilderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		build   func(b *Builder)
		wantErr string
	}{
		{"conflicting component", func(b *Builder) {
			b.Component("A", &Schema{Type: "string"})
			b.Component("A", &Schema{Type: "integer"})
		}, `component "A": registered twice`},
		{"bad component name", func(b *Builder) { b.Component("a b", &Schema{}) }, "name must match"},
		{"nil component", func(b *Builder) { b.Component("A", nil) }, "nil schema"},
		{"same component twice", func(b *Builder) {
			b.Component("A", &Schema{Type: "string"})
			b.Component("A", &Schema{Type: "string"})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBuilder(Info{Title: "t", Version: "v3"})
			tt.build(b)
			err := Validate(b.Doc())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
