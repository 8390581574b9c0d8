package openapi

import (
	"encoding/json"
	"iter"
)

// Version is the OpenAPI version every [Doc] declares.
const Version = "3.0.3"

// DefaultContentType is the media type of a [Response] that names none.
const DefaultContentType = "application/json"

// refPrefix starts every reference this package writes or resolves; it is
// the only form pulp-glue resolves.
const refPrefix = "#/components/schemas/"

// Doc is an OpenAPI 3.0.3 document. Maps are marshaled with sorted keys, so
// the same Doc always marshals to the same bytes.
type Doc struct {
	OpenAPI    string                `json:"openapi"`
	Info       Info                  `json:"info"`
	Paths      map[string]*PathItem  `json:"paths"`
	Components Components            `json:"components"`
	Security   []SecurityRequirement `json:"security,omitempty"`

	// errs holds problems the Builder could not return at the call that
	// caused them (component name clashes); Validate reports them.
	errs []error
}

// Info is the document's info object. AppVersions renders as
// "x-pulp-app-versions", which pulp-cli reads to learn the server's plugins;
// Extensions adds further "x-" keys such as "x-pulp-domain-enabled".
type Info struct {
	Title       string
	Version     string
	Description string
	AppVersions map[string]string
	Extensions  map[string]any
}

// MarshalJSON writes the info object with its extension keys.
func (i Info) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(i.Extensions)+4)
	for k, v := range i.Extensions {
		m[k] = v
	}
	m["title"] = i.Title
	m["version"] = i.Version
	if i.Description != "" {
		m["description"] = i.Description
	}
	apps := i.AppVersions
	if apps == nil {
		apps = map[string]string{}
	}
	m["x-pulp-app-versions"] = apps
	return json.Marshal(m)
}

// Components holds the reusable parts of a document. Schemas is always
// written, even when empty, because pulp-glue indexes it unconditionally.
type Components struct {
	Schemas         map[string]*Schema         `json:"schemas"`
	SecuritySchemes map[string]*SecurityScheme `json:"securitySchemes,omitempty"`
}

// SecurityScheme is a components/securitySchemes entry, e.g.
// {Type: "http", Scheme: "basic"} or {Type: "apiKey", In: "cookie", Name: "sessionid"}.
type SecurityScheme struct {
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	Name        string `json:"name,omitempty"`
	In          string `json:"in,omitempty"`
	Scheme      string `json:"scheme,omitempty"`
}

// SecurityRequirement maps security scheme names to scopes; an empty
// requirement means "no authentication needed".
type SecurityRequirement map[string][]string

// MarshalJSON writes nil scope lists as [], as OpenAPI requires.
func (r SecurityRequirement) MarshalJSON() ([]byte, error) {
	m := make(map[string][]string, len(r))
	for k, v := range r {
		if v == nil {
			v = []string{}
		}
		m[k] = v
	}
	return json.Marshal(m)
}

// PathItem holds the operations of one path.
type PathItem struct {
	Get     *Operation `json:"get,omitempty"`
	Put     *Operation `json:"put,omitempty"`
	Post    *Operation `json:"post,omitempty"`
	Delete  *Operation `json:"delete,omitempty"`
	Options *Operation `json:"options,omitempty"`
	Head    *Operation `json:"head,omitempty"`
	Patch   *Operation `json:"patch,omitempty"`
	Trace   *Operation `json:"trace,omitempty"`
}

// slot returns where the operation for an upper-case method lives, or nil
// for a method OpenAPI does not know.
func (p *PathItem) slot(method string) **Operation {
	switch method {
	case "GET":
		return &p.Get
	case "PUT":
		return &p.Put
	case "POST":
		return &p.Post
	case "DELETE":
		return &p.Delete
	case "OPTIONS":
		return &p.Options
	case "HEAD":
		return &p.Head
	case "PATCH":
		return &p.Patch
	case "TRACE":
		return &p.Trace
	}
	return nil
}

// operations yields the methods and operations that are set, in a fixed order.
func (p *PathItem) operations() iter.Seq2[string, *Operation] {
	return func(yield func(string, *Operation) bool) {
		for _, m := range []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"} {
			if op := *p.slot(m); op != nil && !yield(m, op) {
				return
			}
		}
	}
}

// Operation describes one method on one path. It is what each route in the
// API's route table carries.
type Operation struct {
	ID          string           // operationId, e.g. "artifacts_create"; unique in the document
	Summary     string           // one line
	Description string           // Markdown
	Tags        []string         // e.g. "Artifacts", "Repositories: File"
	Params      []Param          // query, path and header parameters
	Body        *Body            // request body; nil for none
	Responses   map[int]Response // status -> response
	Deprecated  bool
	// Security overrides the document's requirements when non-nil;
	// []SecurityRequirement{{}} makes authentication optional.
	Security []SecurityRequirement
}

// MarshalJSON writes the OpenAPI operation object.
func (o Operation) MarshalJSON() ([]byte, error) {
	w := struct {
		OperationID string                 `json:"operationId"`
		Summary     string                 `json:"summary,omitempty"`
		Description string                 `json:"description,omitempty"`
		Tags        []string               `json:"tags,omitempty"`
		Parameters  []Param                `json:"parameters,omitempty"`
		RequestBody *Body                  `json:"requestBody,omitempty"`
		Responses   map[int]Response       `json:"responses"`
		Deprecated  bool                   `json:"deprecated,omitempty"`
		Security    *[]SecurityRequirement `json:"security,omitempty"`
	}{o.ID, o.Summary, o.Description, o.Tags, o.Params, o.Body, o.Responses, o.Deprecated, nil}
	if o.Security != nil {
		w.Security = &o.Security
	}
	return json.Marshal(w)
}

// Param is a query, path or header parameter. Style and Explode control how
// arrays are serialized; Pulp's "__in" filters use form style without explode
// (comma-separated).
type Param struct {
	Name        string  `json:"name"`
	In          string  `json:"in"` // "query", "path" or "header"
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Deprecated  bool    `json:"deprecated,omitempty"`
	Schema      *Schema `json:"schema"`
	Style       string  `json:"style,omitempty"`
	Explode     *bool   `json:"explode,omitempty"`
}

// Body is a request body: media type -> schema, e.g. "application/json" and
// "multipart/form-data" for the same serializer.
type Body struct {
	Required bool
	Content  map[string]*Schema
}

type mediaType struct {
	Schema *Schema `json:"schema,omitempty"`
}

func media(content map[string]*Schema) map[string]mediaType {
	m := make(map[string]mediaType, len(content))
	for k, s := range content {
		m[k] = mediaType{s}
	}
	return m
}

// MarshalJSON writes the OpenAPI request body object.
func (b Body) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Content  map[string]mediaType `json:"content"`
		Required bool                 `json:"required,omitempty"`
	}{media(b.Content), b.Required})
}

// Response is one status of an operation. Every response has a
// Description; every response but 204 has a Schema, served as ContentType
// (default [DefaultContentType]). Headers maps header names to their schemas.
type Response struct {
	Description string
	Schema      *Schema
	Headers     map[string]*Schema
	ContentType string
}

// MarshalJSON writes the OpenAPI response object.
func (r Response) MarshalJSON() ([]byte, error) {
	w := struct {
		Description string               `json:"description"`
		Headers     map[string]mediaType `json:"headers,omitempty"`
		Content     map[string]mediaType `json:"content,omitempty"`
	}{Description: r.Description}
	if len(r.Headers) > 0 {
		w.Headers = media(r.Headers)
	}
	if r.Schema != nil {
		ct := r.ContentType
		if ct == "" {
			ct = DefaultContentType
		}
		w.Content = map[string]mediaType{ct: {r.Schema}}
	}
	return json.Marshal(w)
}

// JSON returns the document as compact JSON. The same document always gives
// the same bytes.
func (d *Doc) JSON() ([]byte, error) {
	return json.Marshal(d)
}
