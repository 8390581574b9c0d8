package openapi

// Component names of the shared Pulp schemas.
const (
	ErrorComponent          = "ErrorResponse"
	AsyncOperationComponent = "AsyncOperationResponse"
)

// PaginatedList returns the page schema of Pulp's list endpoints, as
// drf-spectacular writes "Paginated<Name>List": count, next, previous and
// the results, of which count and results are required.
func PaginatedList(item *Schema) *Schema {
	page := func(example string) *Schema {
		return &Schema{Type: "string", Format: "uri", Nullable: true, Example: example}
	}
	return &Schema{
		Type:     "object",
		Required: []string{"count", "results"},
		Properties: map[string]*Schema{
			"count":    {Type: "integer", Example: 123},
			"next":     page("http://api.example.org/accounts/?offset=400&limit=100"),
			"previous": page("http://api.example.org/accounts/?offset=200&limit=100"),
			"results":  {Type: "array", Items: item},
		},
	}
}

// QueryParam returns an optional query parameter of OpenAPI type typ
// ("string", "integer", "number", "boolean"). typ "array" gives a list of
// strings sent comma-separated (form style, not exploded), the form of
// Pulp's "__in" filters.
func QueryParam(name, typ, description string) Param {
	p := Param{Name: name, In: "query", Description: description, Schema: &Schema{Type: typ}}
	if typ == "array" {
		p.Schema.Items = &Schema{Type: "string"}
		p.Style, p.Explode = "form", new(false)
	}
	return p
}

// PathParam returns a required string path parameter.
func PathParam(name, description string) Param {
	return Param{Name: name, In: "path", Description: description, Required: true, Schema: &Schema{Type: "string"}}
}

// ErrorSchema registers and returns the schema of Django REST framework
// style error bodies: {"detail": "..."} for most errors, or a map from
// field name (or "non_field_errors") to messages for validation errors.
func (b *Builder) ErrorSchema() *Schema {
	return b.Component(ErrorComponent, &Schema{
		Type:        "object",
		Description: `An error: "detail" holds the message; validation errors map each field (or "non_field_errors") to its messages instead.`,
		Properties: map[string]*Schema{
			"detail": {Type: "string", Description: "What went wrong."},
		},
		AdditionalProperties: &Schema{Type: "array", Items: &Schema{Type: "string"}},
	})
}

// ErrorResponse returns a response with the given description and the
// [Builder.ErrorSchema] body.
func (b *Builder) ErrorResponse(description string) Response {
	return Response{Description: description, Schema: b.ErrorSchema()}
}

// AsyncOperation registers and returns Pulp's 202 body for an operation
// that spawned a task: {"task": "<task href>"}.
func (b *Builder) AsyncOperation() *Schema {
	return b.Component(AsyncOperationComponent, &Schema{
		Type:        "object",
		Description: "Serializer for asynchronous operations.",
		Required:    []string{"task"},
		Properties: map[string]*Schema{
			"task": {Type: "string", Format: "uri", Description: "The href of the task."},
		},
	})
}
