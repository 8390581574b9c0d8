package server

import (
	"encoding/json"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/api"
	"github.com/pulpo/pulpo/host/plugin"
)

// apiTypes turns the plugins' describe documents into the resource types the
// REST API serves. Repository and remote endpoints are named after the type
// ("repositories/file/file/"), content endpoints after its plural
// ("content/file/files/"), as Pulp names them.
func apiTypes(plugins []*plugin.Plugin) api.Types {
	var t api.Types
	for _, p := range plugins {
		d := p.Describe()
		for _, ct := range d.ContentTypes {
			pl, typ := split(ct.Name)
			endpoint := ct.EndpointName
			if endpoint == "" {
				endpoint = typ + "s"
			}
			keys := ct.RepoKey
			if len(keys) == 0 {
				keys = ct.NaturalKey
			}
			t.Contents = append(t.Contents, api.ContentType{Plugin: pl, Endpoint: endpoint, PulpType: ct.Name,
				RepoKeyFields: keys, Fields: fields(ct.Fields)})
		}
		for _, rt := range d.RepositoryTypes {
			pl, typ := split(rt.Name)
			t.Repositories = append(t.Repositories, api.RepositoryType{Plugin: pl, Endpoint: typ, PulpType: rt.Name,
				ContentTypes: rt.ContentTypes, Fields: fields(rt.Fields), RemoteTypes: rt.RemoteTypes, SyncOptions: fields(d.SyncOptions)})
		}
		for _, rt := range d.RemoteTypes {
			pl, typ := split(rt.Name)
			t.Remotes = append(t.Remotes, api.RemoteType{Plugin: pl, Endpoint: typ, PulpType: rt.Name,
				Policies: rt.Policies, Fields: fields(rt.Fields)})
		}
	}
	return t
}

func split(name string) (string, string) {
	p, t, _ := strings.Cut(name, ".")
	return p, t
}

func fields(in []abi.Field) []api.Field {
	out := make([]api.Field, 0, len(in))
	for _, f := range in {
		af := api.Field{Name: f.Name, Type: f.Type, Required: f.Required, Description: f.Description, Enum: f.Enum}
		if len(f.Default) > 0 {
			var v any
			if json.Unmarshal(f.Default, &v) == nil {
				af.Default = v
			}
		}
		out = append(out, af)
	}
	return out
}
