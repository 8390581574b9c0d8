package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/publish"
	"github.com/pulpo/pulpo/host/tasks"
)

// distributionBody documents the fields common to every distribution type.
type distributionBody struct {
	base
	BasePath          string            `json:"base_path" doc:"The base (relative) path component of the published url. A distribution whose base path is a longer prefix of a request path wins."`
	BaseURL           string            `json:"base_url" readOnly:"true" doc:"The URL for accessing the publication as defined by this distribution."`
	ContentGuard      *string           `json:"content_guard,omitempty" format:"uri" doc:"An optional content-guard."`
	Hidden            *bool             `json:"hidden,omitempty" doc:"Whether this distribution should be shown in the content app."`
	PulpLabels        map[string]string `json:"pulp_labels,omitempty"`
	Name              string            `json:"name" doc:"A unique name. Ex, 'rawhide' and 'stable'."`
	Repository        *string           `json:"repository,omitempty" format:"uri" doc:"The latest RepositoryVersion for this Repository will be served."`
	RepositoryVersion *string           `json:"repository_version,omitempty" format:"uri" doc:"RepositoryVersion to be served."`
	Publication       *string           `json:"publication,omitempty" format:"uri" doc:"Publication to be served."`
	Remote            *string           `json:"remote,omitempty" format:"uri" doc:"Remote that can be used to fetch content when using pull-through caching."`
}

var distributionCoreFields = []string{"base_path", "content_guard", "hidden", "pulp_labels", "name",
	"repository", "repository_version", "publication", "remote"}

var distributionFilters = append(append(append(commonFilters(), textFilters("name")...), textFilters("base_path")...),
	filter{Param: "pulp_label_select", Field: "pulp_label_select", Kind: kRaw, Doc: "Filter labels by search string"},
	filter{Param: "repository", Field: "repository", Kind: kHref, Doc: "Filter results where repository matches value"},
	filter{Param: "content_guard", Field: "content_guard", Kind: kHref, Doc: "Filter results where content_guard matches value"},
)

var distributionOrdering = []string{"pulp_id", "pulp_created", "pulp_last_updated", "name", "base_path", "hidden"}

// distributionsResource is the resource other writes lock while distributions change.
const distributionsResource = href.APIRoot + "distributions/"

func (s *Server) distributionType(pulpType string) (DistributionType, bool) {
	return declared(s.Types.Distributions, pulpType, func(t DistributionType) string { return t.PulpType })
}

func (s *Server) distributionHref(pulpType string, id uuid.UUID) string {
	p, e := segments(pulpType)
	if dt, ok := s.distributionType(pulpType); ok {
		p, e = dt.Plugin, dt.Endpoint
	}
	return href.Typed(href.Distributions, p, e, id)
}

func (s *Server) renderDistributionAny(x db.Distribution) any { return s.renderDistribution(x) }

// renderDistribution flattens core and plugin fields, resolving references to hrefs.
func (s *Server) renderDistribution(x db.Distribution) map[string]any {
	out := map[string]any{}
	if len(x.Fields) > 0 {
		_ = json.Unmarshal(x.Fields, &out)
	}
	str := func(id *uuid.UUID, h func(uuid.UUID) string) *string {
		if id == nil {
			return nil
		}
		v := h(*id)
		return &v
	}
	rf := x.Refs
	guard := str(x.ContentGuardID, func(id uuid.UUID) string { return guardHref(rf.GuardType, id) })
	repo := str(x.RepositoryID, func(id uuid.UUID) string { return s.types.repoHref(rf.RepositoryType, id) })
	pub := str(x.PublicationID, func(id uuid.UUID) string { return publish.Href(rf.PublicationType, id) })
	remote := str(x.RemoteID, func(id uuid.UUID) string { return s.remoteHrefOf(rf.RemoteType, id) })
	var version *string
	if x.RepositoryVersionID != nil && rf.VersionRepository != nil {
		v := href.Version(s.types.repoHref(rf.VersionRepositoryType, *rf.VersionRepository), rf.VersionNumber)
		version = &v
	}
	for k, v := range map[string]any{
		"pulp_href": s.distributionHref(x.PulpType, x.ID), "prn": prn(x.PulpType+"distribution", x.ID),
		"pulp_created": x.CreatedAt, "pulp_last_updated": x.UpdatedAt, "pulp_type": x.PulpType,
		"base_path": x.BasePath, "base_url": s.ContentOrigin + s.ContentPathPrefix + x.BasePath + "/",
		"content_guard": guard, "hidden": x.Hidden, "pulp_labels": x.PulpLabels, "name": x.Name,
		"repository": repo, "repository_version": version, "publication": pub, "remote": remote,
	} {
		out[k] = v
	}
	return out
}

func (s *Server) distributionRoutes() error {
	generic := s.spec.Component("Distribution", openapi.SchemaOf(distributionBody{}))
	filters := append(distributionFilters, typeFilters()...)
	if err := s.route("GET", href.APIRoot+"distributions/", openapi.Operation{ID: "distributions_list", Summary: "List distributions",
		Tags: []string{"Distributions"}, Params: listParams(filters, distributionOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(generic)}, 400: s.spec.ErrorResponse("Bad request")},
	}, listOf(filters, distributionOrdering, "", s.DB.ListDistributions, s.renderDistributionAny)); err != nil {
		return err
	}
	for _, dt := range s.Types.Distributions {
		resp, req, patch := s.schemas(strings.ReplaceAll(tag(dt.Plugin, dt.Endpoint), " ", ""), "Distribution", distributionBody{}, dt.Fields)
		if err := s.familyRoutes(family{
			master: href.Distributions, plugin: dt.Plugin, endpoint: dt.Endpoint, noun: dt.PulpType + " distribution",
			resp: resp, req: req, patch: patch, filters: distributionFilters, ordering: distributionOrdering,
			list:   listOf(distributionFilters, distributionOrdering, dt.PulpType, s.DB.ListDistributions, s.renderDistributionAny),
			create: s.writeDistribution(dt, true, false), read: readOne(func(r *http.Request) (db.Distribution, error) { return s.distributionFromPath(r, dt) }, s.renderDistribution),
			update: s.writeDistribution(dt, false, false), partialUpdate: s.writeDistribution(dt, false, true),
			del:         s.deleteDistribution(dt),
			createAsync: true, updateAsync: true, deleteAsync: true,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) distributionFromPath(r *http.Request, dt DistributionType) (db.Distribution, error) {
	return typedFromPath(r, s.DB.GetDistribution, func(x db.Distribution) string { return x.PulpType }, dt.PulpType)
}

// writeDistribution validates a create or update and dispatches its task.
func (s *Server) writeDistribution(dt DistributionType, create, partial bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		x := db.Distribution{ID: db.NewID(), PulpType: dt.PulpType}
		if !create {
			var err error
			if x, err = s.distributionFromPath(r, dt); err != nil {
				return err
			}
		}
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		if err := s.distributionInput(r, o, dt, &x, create, partial); err != nil {
			return err
		}
		h := s.distributionHref(dt.PulpType, x.ID)
		name := coretask.UpdateDistribution
		if create {
			name = coretask.CreateDistribution
		}
		return s.dispatch(w, r, tasks.Spec{Name: name, Exclusive: []string{distributionsResource, h},
			Args: coretask.DistributionArgs{Distribution: x, Href: h}})
	}
}

func (s *Server) deleteDistribution(dt DistributionType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		x, err := s.distributionFromPath(r, dt)
		if err != nil {
			return err
		}
		h := s.distributionHref(dt.PulpType, x.ID)
		return s.dispatch(w, r, tasks.Spec{Name: coretask.DeleteDistribution, Exclusive: []string{distributionsResource, h},
			Args: coretask.IDArgs{ID: x.ID}})
	}
}

// distributionInput validates a body onto x. Absent fields keep their value
// for PATCH and take their default otherwise.
func (s *Server) distributionInput(r *http.Request, o object, dt DistributionType, x *db.Distribution, create, partial bool) error {
	ctx := r.Context()
	fe := fieldErrors{}
	known := map[string]bool{}
	for _, f := range distributionCoreFields {
		known[f] = true
	}
	for _, f := range dt.Fields {
		known[f.Name] = true
	}
	o.unexpected(fe, known)
	if name, present := o.str(fe, "name", false); name != nil {
		switch {
		case strings.TrimSpace(*name) == "":
			fe.add("name", "This field may not be blank.")
		case len(*name) > 255:
			fe.add("name", "Ensure this field has no more than 255 characters.")
		default:
			x.Name = *name
		}
	} else if !present && !partial {
		fe.add("name", "This field is required.")
	}
	if bp, present := o.str(fe, "base_path", false); bp != nil {
		if msg := checkBasePath(*bp); msg != "" {
			fe.add("base_path", "%s", msg)
		} else {
			x.BasePath = *bp
		}
	} else if !present && !partial {
		fe.add("base_path", "This field is required.")
	}
	if h, present := scalar[bool](o, fe, "hidden", false, "Must be a valid boolean."); h != nil {
		x.Hidden = *h
	} else if !present && !partial {
		x.Hidden = false
	}
	if l, present := o.labels(fe, "pulp_labels"); present {
		x.PulpLabels = l
	} else if !partial {
		x.PulpLabels = map[string]string{}
	}
	if ref, present := o.hrefOf(fe, "content_guard", href.ContentGuards); ref != nil {
		if _, err := s.DB.GetContentGuard(ctx, ref.ID); errors.Is(err, db.ErrNotFound) {
			fe.add("content_guard", "Invalid hyperlink - Object does not exist.")
		} else if err != nil {
			return err
		} else {
			x.ContentGuardID = &ref.ID
		}
	} else if present || !partial {
		x.ContentGuardID = nil
	}
	if err := s.servedObject(r, o, fe, dt, x, partial); err != nil {
		return err
	}
	if ref, present := o.hrefOf(fe, "remote", href.Remotes); ref != nil {
		rm, err := s.DB.GetRemote(ctx, ref.ID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			fe.add("remote", "Invalid hyperlink - Object does not exist.")
		case err != nil:
			return err
		case !strings.HasPrefix(rm.PulpType, dt.Plugin+"."):
			fe.add("remote", "Type for Remote '%s' does not match Distribution type %s.", rm.PulpType, dt.PulpType)
		default:
			x.RemoteID = &rm.ID
		}
	} else if present || !partial {
		x.RemoteID = nil
	}
	old := x.Fields
	if !partial {
		old = nil
	}
	x.Fields = o.pluginFields(fe, dt.Fields, old, create || !partial)
	if err := fe.err(); err != nil {
		return err
	}
	if err := uniqueName(r, s.DB.ListDistributions, func(d db.Distribution) uuid.UUID { return d.ID }, x.Name, x.ID); err != nil {
		return err
	}
	p, err := s.DB.ListDistributions(ctx, db.ListParams{Filters: []db.Filter{{Field: "base_path", Value: x.BasePath}}, Limit: 1})
	if err != nil {
		return err
	}
	if len(p.Items) > 0 && p.Items[0].ID != x.ID {
		return fieldError("base_path", "This field must be unique.")
	}
	return nil
}

// servedObject reads repository, repository_version and publication: at most
// one may be set, each of this plugin's types, versions and publications complete.
func (s *Server) servedObject(r *http.Request, o object, fe fieldErrors, dt DistributionType, x *db.Distribution, partial bool) error {
	ctx := r.Context()
	given := 0
	for _, k := range []string{"repository", "repository_version", "publication"} {
		if raw, ok := o[k]; ok && !isNull(raw) {
			given++
		}
	}
	if given > 1 {
		fe.add("non_field_errors", "Only one of the attributes 'repository', 'repository_version' and 'publication' may be used simultaneously.")
		return nil
	}
	if given == 1 || !partial {
		// Setting one clears the others, as Pulp does.
		x.RepositoryID, x.RepositoryVersionID, x.PublicationID = nil, nil, nil
	}
	for name, id := range map[string]**uuid.UUID{"repository": &x.RepositoryID,
		"repository_version": &x.RepositoryVersionID, "publication": &x.PublicationID} {
		if raw, ok := o[name]; ok && isNull(raw) {
			*id = nil
		}
	}
	plugin := dt.Plugin + "."
	mismatch := func(field, kind, typ string) {
		fe.add(field, "Type for %s '%s' does not match Distribution type %s.", kind, typ, dt.PulpType)
	}
	repo, err := s.repositoryRef(ctx, o, fe, "repository")
	if err != nil {
		return err
	}
	if repo != nil {
		if strings.HasPrefix(repo.PulpType, plugin) {
			x.RepositoryID = &repo.ID
		} else {
			mismatch("repository", "Repository", repo.PulpType)
		}
	}
	vrepo, v, err := s.versionRef(ctx, o, fe, "repository_version")
	if err != nil {
		return err
	}
	if v != nil {
		if strings.HasPrefix(vrepo.PulpType, plugin) {
			x.RepositoryVersionID = &v.ID
		} else {
			mismatch("repository_version", "Repository", vrepo.PulpType)
		}
	}
	if raw, ok := o["publication"]; ok && !isNull(raw) {
		ref, _ := o.hrefOf(fe, "publication", href.Publications)
		switch {
		case ref == nil:
		case !dt.ServeFromPublication:
			fe.add("publication", "%s distributions serve repository versions, not publications.", dt.PulpType)
		default:
			p, err := s.DB.GetPublication(ctx, ref.ID)
			switch {
			case errors.Is(err, db.ErrNotFound) || (err == nil && !p.Complete):
				fe.add("publication", "Invalid hyperlink - Object does not exist.")
			case err != nil:
				return err
			case !strings.HasPrefix(p.PulpType, plugin):
				mismatch("publication", "Publication", p.PulpType)
			default:
				x.PublicationID = &p.ID
			}
		}
	}
	return nil
}

// checkBasePath tells what is wrong with a base path, or "".
func checkBasePath(bp string) string {
	switch {
	case bp == "":
		return "This field may not be blank."
	case len(bp) > 255:
		return "Ensure this field has no more than 255 characters."
	case strings.HasPrefix(bp, "/") || strings.HasSuffix(bp, "/"):
		return "Base path must not start or end with '/'."
	case strings.ContainsAny(bp, "\\\x00?#%") || strings.ContainsFunc(bp, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }):
		return "Base path may not contain spaces, control characters, '\\', '?', '#' or '%'."
	}
	for _, seg := range strings.Split(bp, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "Base path segments may not be empty, '.' or '..'."
		}
	}
	return ""
}
