package openapi_test

import (
	"fmt"

	"github.com/pulpo/pulpo/host/openapi"
)

type Artifact struct {
	PulpHref string `json:"pulp_href" readOnly:"true" format:"uri"`
	SHA256   string `json:"sha256,omitempty" doc:"The SHA-256 checksum of the file."`
}

func ExampleBuilder() {
	b := openapi.NewBuilder(openapi.Info{Title: "Pulp 3 API", Version: "v3",
		AppVersions: map[string]string{"core": "0.1.0"}})
	artifact := b.SchemaOf("ArtifactResponse", Artifact{})
	err := b.Add("GET", "/pulp/api/v3/artifacts/{pulp_id}/", openapi.Operation{
		ID:        "artifacts_read",
		Tags:      []string{"Artifacts"},
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: artifact}},
	})
	if err != nil {
		panic(err)
	}
	doc := b.Doc()
	if err := openapi.Validate(doc); err != nil {
		panic(err)
	}
	out, _ := doc.JSON()
	fmt.Println(string(out))
	// Output:
	// {"openapi":"3.0.3","info":{"title":"Pulp 3 API","version":"v3","x-pulp-app-versions":{"core":"0.1.0"}},"paths":{"/pulp/api/v3/artifacts/{pulp_id}/":{"get":{"operationId":"artifacts_read","tags":["Artifacts"],"parameters":[{"name":"pulp_id","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"OK","content":{"application/json":{"schema":{"$ref":"#/components/schemas/ArtifactResponse"}}}}}}}},"components":{"schemas":{"ArtifactResponse":{"type":"object","properties":{"pulp_href":{"type":"string","format":"uri","readOnly":true},"sha256":{"type":"string","description":"The SHA-256 checksum of the file."}},"required":["pulp_href"]}}}}
}

func ExampleSchemaOf() {
	s := openapi.SchemaOf(struct {
		Name   string  `json:"name"`
		Remote *string `json:"remote,omitempty" format:"uri"`
	}{})
	fmt.Println(s.Required, s.Properties["remote"].Nullable, s.Properties["remote"].Format)
	// Output: [name] true uri
}
