// Package openapi models an OpenAPI 3.0.3 document and builds one from a
// route table, so the document served at /pulp/api/v3/docs/api.json is
// generated from the same routes that serve requests and is never kept by
// hand.
//
// # Building a document
//
// A [Builder] collects one [Operation] per method and path. Paths use the
// wildcard syntax of net/http's ServeMux; "{name...}" becomes "{name}" and
// "{$}" is dropped. Schemas come from Go types through [Builder.SchemaOf]
// (and [Builder.RequestOf] for request bodies), which register named struct
// types under components/schemas and return a $ref to them:
//
//	b := openapi.NewBuilder(openapi.Info{Title: "Pulp 3 API", Version: "v3",
//		AppVersions: map[string]string{"core": "0.1.0"}})
//	artifact := b.SchemaOf("ArtifactResponse", Artifact{})
//	err := b.Add("GET", "/pulp/api/v3/artifacts/{pulp_id}/", openapi.Operation{
//		ID:        "artifacts_read",
//		Tags:      []string{"Artifacts"},
//		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: artifact}},
//	})
//	doc := b.Doc()
//	if err := openapi.Validate(doc); err != nil { ... }
//	body, err := doc.JSON()
//
// # Schemas from Go types
//
// [SchemaOf] follows encoding/json: the json tag gives the name, "-" skips a
// field, and embedded structs are flattened. A field without omitempty (or
// omitzero) is required, as Pulp marks output fields. Pointers are nullable,
// time.Time is a date-time string, json.RawMessage and interfaces are
// free-form. These struct tags add documentation:
//
//	doc:"..."          description
//	readOnly:"true"    readOnly (dropped from request schemas)
//	writeOnly:"true"   writeOnly
//	format:"uri"       format (of the items, for slices)
//	enum:"a,b,c"       enum (of the items, for slices)
//	pattern:"^[a-z]+$" pattern
//
// # Compatibility
//
// pulp-glue (pulp-cli) reads operationId, parameters and requestBody content
// types, resolves only "#/components/schemas/..." references, ignores every
// sibling of "$ref", and checks that a JSON response's Content-Type equals a
// key of the response's content map. Decorated or nullable references are
// therefore written as {"allOf": [{"$ref": ...}], "nullable": true}, as
// drf-spectacular does, and "components"/"schemas" is always present.
//
// A Builder is not safe for concurrent use.
package openapi
