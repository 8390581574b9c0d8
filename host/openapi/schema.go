package openapi

import "strings"

// Schema is an OpenAPI 3.0 schema object. Empty fields are omitted, so
// &Schema{} is the free-form schema {}. AdditionalProperties is nil, a bool
// or a *Schema. A schema with Ref set should set nothing else: pulp-glue
// ignores the siblings of "$ref"; use [Nullable] or AllOf to decorate one.
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Title                string             `json:"title,omitempty"`
	Description          string             `json:"description,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties any                `json:"additionalProperties,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Maximum              *float64           `json:"maximum,omitempty"`
	MinLength            *int               `json:"minLength,omitempty"`
	MaxLength            *int               `json:"maxLength,omitempty"`
	MinItems             *int               `json:"minItems,omitempty"`
	MaxItems             *int               `json:"maxItems,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	ReadOnly             bool               `json:"readOnly,omitempty"`
	WriteOnly            bool               `json:"writeOnly,omitempty"`
	Deprecated           bool               `json:"deprecated,omitempty"`
	OneOf                []*Schema          `json:"oneOf,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`
	AllOf                []*Schema          `json:"allOf,omitempty"`
	Default              any                `json:"default,omitempty"`
	Example              any                `json:"example,omitempty"`
}

// Ref returns a schema referring to components/schemas/name.
func Ref(name string) *Schema {
	return &Schema{Ref: refPrefix + name}
}

// Nullable returns s marked nullable. A reference is wrapped in allOf first,
// because the siblings of "$ref" are ignored. s itself is not changed.
func Nullable(s *Schema) *Schema {
	out := decorable(s)
	out.Nullable = true
	return out
}

// decorable returns a copy of s on which description, nullable and the
// read/write flags take effect: a reference becomes {"allOf": [ref]}.
func decorable(s *Schema) *Schema {
	if s.Ref != "" {
		return &Schema{AllOf: []*Schema{s}}
	}
	c := *s
	return &c
}

// refName returns the component name of a local reference, or false.
func refName(ref string) (string, bool) {
	return strings.CutPrefix(ref, refPrefix)
}

// validName reports whether name is allowed as a component key
// (^[a-zA-Z0-9.\-_]+$).
func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
