package server

import (
	"encoding/json"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/api"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/publish"
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
				RepoKeyFields: keys, Fields: fields(ct.Fields), NaturalKey: ct.NaturalKey,
				RelativePathField: ct.Artifacts.RelativePathField, DigestField: ct.Artifacts.DigestField})
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
		for _, pt := range d.PublicationTypes {
			pl, typ := split(pt.Name)
			t.Publications = append(t.Publications, api.PublicationType{Plugin: pl, Endpoint: typ, PulpType: pt.Name,
				Fields: fields(pt.Fields)})
		}
		for _, dt := range d.DistributionTypes {
			pl, typ := split(dt.Name)
			t.Distributions = append(t.Distributions, api.DistributionType{Plugin: pl, Endpoint: typ, PulpType: dt.Name,
				ServeFromPublication: dt.ServeFromPublication, Fields: fields(dt.Fields)})
		}
	}
	return t
}

// newPublisher gives the publish task every declared publication type.
func newPublisher(d *db.DB, arts *artifact.Store, plugins *plugin.Registry) *publish.Service {
	s := &publish.Service{DB: d, Artifacts: arts, Types: map[string]publish.Type{}, NaturalKeys: map[string][]string{},
		Plugin: func(name string) (publish.Publisher, bool) {
			p, ok := plugins.Plugin(name)
			return p, ok
		}}
	for _, p := range plugins.Plugins() {
		desc := p.Describe()
		for _, ct := range desc.ContentTypes {
			s.NaturalKeys[ct.Name] = ct.NaturalKey
		}
		for _, pt := range desc.PublicationTypes {
			defaults := map[string]json.RawMessage{}
			for _, f := range pt.Fields {
				if len(f.Default) > 0 {
					defaults[f.Name] = f.Default
				}
			}
			s.Types[pt.Name] = publish.Type{Plugin: desc.Name, Fields: defaults}
		}
	}
	return s
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
