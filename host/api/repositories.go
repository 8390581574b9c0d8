package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/tasks"
)

// repositoryBody documents the fields common to every repository type.
type repositoryBody struct {
	base
	VersionsHref       string            `json:"versions_href" readOnly:"true" format:"uri"`
	PulpLabels         map[string]string `json:"pulp_labels,omitempty"`
	LatestVersionHref  string            `json:"latest_version_href" readOnly:"true" format:"uri"`
	Name               string            `json:"name" doc:"A unique name for this repository."`
	Description        *string           `json:"description,omitempty" doc:"An optional description."`
	RetainRepoVersions *int              `json:"retain_repo_versions,omitempty" doc:"Retain X versions of the repository. Default is null which retains all versions."`
	Remote             *string           `json:"remote,omitempty" format:"uri" doc:"An optional remote to use by default when syncing."`
}

type summaryEntry struct {
	Count int64  `json:"count"`
	Href  string `json:"href"`
}

type contentSummary struct {
	Added   map[string]summaryEntry `json:"added"`
	Removed map[string]summaryEntry `json:"removed"`
	Present map[string]summaryEntry `json:"present"`
}

type versionResponse struct {
	base
	Number         int            `json:"number" readOnly:"true"`
	Repository     string         `json:"repository" readOnly:"true" format:"uri"`
	BaseVersion    *string        `json:"base_version" format:"uri" doc:"A repository version whose content was used as the initial set of content for this repository version"`
	ContentSummary contentSummary `json:"content_summary" readOnly:"true" doc:"Various count summaries of the content in the version and the HREF to view them."`
}

type modifyBody struct {
	AddContentUnits    []string `json:"add_content_units,omitempty" doc:"A list of content units to add to a new repository version. This content is added after remove_content_units are removed."`
	RemoveContentUnits []string `json:"remove_content_units,omitempty" doc:"A list of content units to remove from the latest repository version. You may also specify '*' as an entry to remove all content. This content is removed before add_content_units are added."`
	BaseVersion        *string  `json:"base_version,omitempty" format:"uri" doc:"A repository version whose content will be used as the initial set of content for the new repository version"`
}

var repositoryCoreFields = []string{"name", "description", "pulp_labels", "retain_repo_versions", "remote"}

var repoFilters = append(append(commonFilters(), textFilters("name")...),
	filter{Param: "pulp_label_select", Field: "pulp_label_select", Kind: kRaw, Doc: "Filter labels by search string"},
	filter{Param: "remote", Field: "remote", Kind: kHref, Doc: "Foreign Key referenced by HREF"},
	filter{Param: "retain_repo_versions", Field: "retain_repo_versions", Kind: kInt, Doc: "Filter results where retain_repo_versions matches value"},
)

var repoOrdering = []string{"pulp_created", "pulp_last_updated", "name", "description", "retain_repo_versions", "next_version"}

var versionFilters = append(append(commonFilters(),
	filter{Param: "number", Field: "number", Kind: kInt, Doc: "Filter results where number matches value"},
	filter{Param: "number__gt", Field: "number", Op: "gt", Kind: kInt, Doc: "Filter results where number is greater than value"},
	filter{Param: "number__gte", Field: "number", Op: "gte", Kind: kInt, Doc: "Filter results where number is greater than or equal to value"},
	filter{Param: "number__lt", Field: "number", Op: "lt", Kind: kInt, Doc: "Filter results where number is less than value"},
	filter{Param: "number__lte", Field: "number", Op: "lte", Kind: kInt, Doc: "Filter results where number is less than or equal to value"},
	filter{Param: "content", Field: "content", Kind: kHref, Doc: "Content Unit referenced by HREF"},
	filter{Param: "content__in", Field: "content", Op: "in", Kind: kHrefs, Doc: "Content Unit referenced by HREF"},
), timeFilters("pulp_created", "pulp_created")...)

var versionOrdering = []string{"pulp_created", "number"}

// renderRepository flattens the core and plugin fields into one object.
func (s *Server) renderRepository(r db.Repository) map[string]any {
	h := s.types.repoHref(r.PulpType, r.ID)
	out := map[string]any{}
	if len(r.Fields) > 0 {
		_ = json.Unmarshal(r.Fields, &out)
	}
	var remote *string
	if r.RemoteID != nil {
		rh := s.remoteHrefOf(r.PulpType, *r.RemoteID)
		remote = &rh
	}
	labels := r.PulpLabels
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range map[string]any{
		"pulp_href": h, "prn": prn(r.PulpType+"repository", r.ID),
		"pulp_created": r.CreatedAt, "pulp_last_updated": r.UpdatedAt,
		"versions_href": h + "versions/", "latest_version_href": href.Version(h, r.LatestVersion),
		"pulp_labels": labels, "name": r.Name, "description": r.Description,
		"retain_repo_versions": r.RetainRepoVersions, "remote": remote, "pulp_type": r.PulpType,
	} {
		out[k] = v
	}
	return out
}

func (s *Server) renderRepositoryAny(r db.Repository) any { return s.renderRepository(r) }

func (s *Server) renderVersion(ctx context.Context, repoHref string, v db.RepositoryVersion) versionResponse {
	vh := href.Version(repoHref, v.Number)
	out := versionResponse{
		base:   base{PulpHref: vh, PRN: prn("core.repositoryversion", v.ID), PulpCreated: v.CreatedAt, PulpLastUpdated: v.UpdatedAt},
		Number: v.Number, Repository: repoHref,
		ContentSummary: contentSummary{Added: map[string]summaryEntry{}, Removed: map[string]summaryEntry{}, Present: map[string]summaryEntry{}},
	}
	for _, part := range []struct {
		counts map[string]int64
		into   map[string]summaryEntry
		param  string
	}{
		{v.ContentSummary.Added, out.ContentSummary.Added, "repository_version_added"},
		{v.ContentSummary.Removed, out.ContentSummary.Removed, "repository_version_removed"},
		{v.ContentSummary.Present, out.ContentSummary.Present, "repository_version"},
	} {
		for typ, n := range part.counts {
			part.into[typ] = summaryEntry{Count: n, Href: s.types.contentListPath(typ) + "?" + part.param + "=" + vh}
		}
	}
	if v.BaseVersionID != nil {
		if bv, err := s.DB.GetVersionByID(ctx, *v.BaseVersionID); err == nil {
			bh := href.Version(repoHref, bv.Number)
			out.BaseVersion = &bh
		}
	}
	return out
}

func (s *Server) repositoryRoutes() error {
	generic := s.spec.Component("Repository", openapi.SchemaOf(repositoryBody{}))
	if err := s.route("GET", href.APIRoot+"repositories/", openapi.Operation{ID: "repositories_list", Summary: "List repositories",
		Tags: []string{"Repositories"}, Params: listParams(append(repoFilters, typeFilters()...), repoOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(generic)}, 400: s.spec.ErrorResponse("Bad request")},
	}, listOf(append(repoFilters, typeFilters()...), repoOrdering, "", s.DB.ListRepositories, s.renderRepositoryAny)); err != nil {
		return err
	}
	for _, rt := range s.Types.Repositories {
		if err := s.typedRepositoryRoutes(rt); err != nil {
			return err
		}
	}
	return nil
}

func opName(parts ...string) string {
	return strings.ReplaceAll(strings.Join(parts, "_"), "-", "_")
}

func (s *Server) typedRepositoryRoutes(rt RepositoryType) error {
	prefix := href.APIRoot + "repositories/" + rt.Plugin + "/" + rt.Endpoint + "/"
	one := prefix + "{pulp_id}/"
	id := func(action string) string { return opName("repositories", rt.Plugin, rt.Endpoint, action) }
	name := strings.ReplaceAll(tag(rt.Plugin, rt.Endpoint), " ", "")
	tags := []string{"Repositories: " + tag(rt.Plugin, rt.Endpoint)}
	respSchema := s.spec.Component(name+"RepositoryResponse", extend(openapi.SchemaOf(repositoryBody{}), rt.Fields, false))
	reqInline := extend(s.requestSchema(repositoryBody{}), rt.Fields, true)
	reqSchema := s.spec.Component(name+"Repository", reqInline)
	patched := *reqInline
	patched.Required = nil
	patchSchema := s.spec.Component("Patched"+name+"Repository", &patched)
	versionSchema := s.spec.SchemaOf("RepositoryVersionResponse", versionResponse{})
	bad, notFound := s.spec.ErrorResponse("Bad request"), s.spec.ErrorResponse("Not found")
	async := openapi.Response{Description: "Accepted", Schema: s.spec.AsyncOperation()}
	body := func(sc *openapi.Schema) *openapi.Body {
		return &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": sc}}
	}
	version := one + "versions/{number}/"
	numberParam := openapi.Param{Name: "number", In: "path", Required: true, Schema: &openapi.Schema{Type: "integer"}}
	if err := s.routes([]routeDef{
		{"GET", prefix, openapi.Operation{ID: id("list"), Summary: "List " + rt.PulpType + " repositories", Tags: tags, Params: listParams(repoFilters, repoOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(respSchema)}, 400: bad}}, listOf(repoFilters, repoOrdering, rt.PulpType, s.DB.ListRepositories, s.renderRepositoryAny)},
		{"POST", prefix, openapi.Operation{ID: id("create"), Summary: "Create a " + rt.PulpType + " repository", Tags: tags, Body: body(reqSchema),
			Responses: map[int]openapi.Response{201: {Description: "Created", Schema: respSchema}, 400: bad}}, s.createRepository(rt)},
		{"GET", one, openapi.Operation{ID: id("read"), Summary: "Inspect a " + rt.PulpType + " repository", Tags: tags, Params: selectionParams(),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: respSchema}, 404: notFound}}, readOne(func(r *http.Request) (db.Repository, error) { return s.repoFromPath(r, rt) }, s.renderRepository)},
		{"PUT", one, openapi.Operation{ID: id("update"), Summary: "Update a " + rt.PulpType + " repository", Tags: tags, Body: body(reqSchema),
			Description: "Trigger an asynchronous task to update a repository.",
			Responses:   map[int]openapi.Response{202: async, 400: bad, 404: notFound}}, s.updateRepository(rt, false)},
		{"PATCH", one, openapi.Operation{ID: id("partial_update"), Summary: "Update a " + rt.PulpType + " repository", Tags: tags, Body: body(patchSchema),
			Description: "Trigger an asynchronous partial update task.",
			Responses:   map[int]openapi.Response{202: async, 400: bad, 404: notFound}}, s.updateRepository(rt, true)},
		{"DELETE", one, openapi.Operation{ID: id("delete"), Summary: "Delete a " + rt.PulpType + " repository", Tags: tags,
			Description: "Trigger an asynchronous delete task.",
			Responses:   map[int]openapi.Response{202: async, 404: notFound}}, s.deleteRepository(rt)},
		{"POST", one + "modify/", openapi.Operation{ID: id("modify"), Summary: "Modify repository", Tags: tags,
			Description: "Trigger an asynchronous task to create a new repository version.",
			Body:        body(s.spec.RequestOf("RepositoryAddRemoveContent", modifyBody{})),
			Responses:   map[int]openapi.Response{202: async, 400: bad, 404: notFound}}, s.modifyRepository(rt)},
		{"GET", one + "versions/", openapi.Operation{ID: id("versions_list"), Summary: "List repository versions", Tags: []string{"Repositories: " + tag(rt.Plugin, rt.Endpoint) + " Versions"},
			Params:    listParams(versionFilters, versionOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(versionSchema)}, 400: bad, 404: notFound}}, s.listVersions(rt)},
		{"GET", version, openapi.Operation{ID: id("versions_read"), Summary: "Inspect a repository version", Tags: []string{"Repositories: " + tag(rt.Plugin, rt.Endpoint) + " Versions"},
			Params:    append([]openapi.Param{numberParam}, selectionParams()...),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: versionSchema}, 404: notFound}}, s.readVersion(rt)},
		{"DELETE", version, openapi.Operation{ID: id("versions_delete"), Summary: "Delete a repository version", Tags: []string{"Repositories: " + tag(rt.Plugin, rt.Endpoint) + " Versions"},
			Description: "Trigger an asynchronous task to delete a repository version.", Params: []openapi.Param{numberParam},
			Responses: map[int]openapi.Response{202: async, 400: bad, 404: notFound}}, s.deleteVersion(rt)},
	}); err != nil {
		return err
	}
	if len(rt.RemoteTypes) == 0 {
		return nil
	}
	syncSchema := s.spec.Component(name+"RepositorySyncURL", extend(s.requestSchema(syncBody{}), rt.SyncOptions, false))
	return s.route("POST", one+"sync/", openapi.Operation{ID: id("sync"), Summary: "Sync from a remote", Tags: tags,
		Description: "Trigger an asynchronous task to sync content: the new repository version holds what the remote offers (mirror), or that and the current content.",
		Body:        body(syncSchema),
		Responses:   map[int]openapi.Response{202: async, 400: bad, 404: notFound}}, s.syncRepository(rt))
}

// requestSchema is an inline schema of v without its read-only fields.
func (s *Server) requestSchema(v any) *openapi.Schema {
	full := openapi.SchemaOf(v)
	out := *full
	out.Properties = map[string]*openapi.Schema{}
	out.Required = nil
	for k, p := range full.Properties {
		if !p.ReadOnly {
			out.Properties[k] = p
		}
	}
	for _, k := range full.Required {
		if _, ok := out.Properties[k]; ok {
			out.Required = append(out.Required, k)
		}
	}
	return &out
}

// repoFromPath loads the repository of the path, which must be of type rt.
func (s *Server) repoFromPath(r *http.Request, rt RepositoryType) (db.Repository, error) {
	return typedFromPath(r, s.DB.GetRepository, func(x db.Repository) string { return x.PulpType }, rt.PulpType)
}

// repoInput validates a create or update body onto repo.
func (s *Server) repoInput(r *http.Request, o object, rt RepositoryType, repo *db.Repository, create, partial bool) error {
	fe := fieldErrors{}
	known := map[string]bool{}
	for _, f := range repositoryCoreFields {
		known[f] = true
	}
	for _, f := range rt.Fields {
		known[f.Name] = true
	}
	o.unexpected(fe, known)
	if name, present := o.str(fe, "name", false); name != nil {
		if strings.TrimSpace(*name) == "" {
			fe.add("name", "This field may not be blank.")
		} else if len(*name) > 255 {
			fe.add("name", "Ensure this field has no more than 255 characters.")
		}
		repo.Name = *name
	} else if !present && !partial {
		fe.add("name", "This field is required.")
	}
	if d, present := o.str(fe, "description", true); present {
		repo.Description = d
	} else if !partial {
		repo.Description = nil
	}
	if l, present := o.labels(fe, "pulp_labels"); present {
		repo.PulpLabels = l
	} else if !partial {
		repo.PulpLabels = map[string]string{}
	}
	if n, present := o.integer(fe, "retain_repo_versions", true, 1); present {
		repo.RetainRepoVersions = n
	} else if !partial {
		repo.RetainRepoVersions = nil
	}
	if ref, present := o.hrefOf(fe, "remote", href.Remotes); ref != nil {
		typ, err := s.DB.RemoteType(r.Context(), ref.ID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			fe.add("remote", "Invalid hyperlink - Object does not exist.")
		case err != nil:
			return err
		case !contains(rt.RemoteTypes, typ) && typ != rt.PulpType:
			fe.add("remote", "Type for Remote '%s' does not match Repository type %s.", typ, rt.PulpType)
		default:
			repo.RemoteID = &ref.ID
		}
	} else if present || !partial {
		repo.RemoteID = nil
	}
	old := repo.Fields
	if !partial {
		old = nil
	}
	repo.Fields = o.pluginFields(fe, rt.Fields, old, create || !partial)
	return fe.err()
}

func (s *Server) createRepository(rt RepositoryType) handlerFunc {
	return createOne(db.Repository{PulpType: rt.PulpType},
		func(r *http.Request, o object, repo *db.Repository) error {
			return s.repoInput(r, o, rt, repo, true, false)
		},
		s.DB.CreateRepository, s.renderRepository)
}

func (s *Server) updateRepository(rt RepositoryType, partial bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, err := s.repoFromPath(r, rt)
		if err != nil {
			return err
		}
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		if err := s.repoInput(r, o, rt, &repo, false, partial); err != nil {
			return err
		}
		if err := uniqueName(r, s.DB.ListRepositories, func(x db.Repository) uuid.UUID { return x.ID }, repo.Name, repo.ID); err != nil {
			return err
		}
		repoHref := s.types.repoHref(rt.PulpType, repo.ID)
		return s.dispatch(w, r, tasks.Spec{Name: coretask.UpdateRepository, Immediate: true, Exclusive: []string{repoHref},
			Args: coretask.UpdateRepositoryArgs{Repository: repo.ID, Name: repo.Name, Description: repo.Description,
				PulpLabels: repo.PulpLabels, RetainRepoVersions: repo.RetainRepoVersions, Remote: repo.RemoteID, Fields: repo.Fields}})
	}
}

func (s *Server) deleteRepository(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, err := s.repoFromPath(r, rt)
		if err != nil {
			return err
		}
		return s.dispatch(w, r, tasks.Spec{Name: coretask.DeleteRepository, Args: coretask.IDArgs{ID: repo.ID},
			Exclusive: []string{s.types.repoHref(rt.PulpType, repo.ID)}})
	}
}

func (s *Server) modifyRepository(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		repo, err := s.repoFromPath(r, rt)
		if err != nil {
			return err
		}
		var req struct {
			Add    *[]string `json:"add_content_units"`
			Remove *[]string `json:"remove_content_units"`
			Base   *string   `json:"base_version"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		repoHref := s.types.repoHref(rt.PulpType, repo.ID)
		args := coretask.ModifyArgs{Repository: repo.ID, RepoHref: repoHref, ContentTypes: rt.ContentTypes, RepoKeys: s.repoKeys(rt)}
		fe := fieldErrors{}
		parse := func(field string, hrefs []string, allowStar bool) []uuid.UUID {
			var ids []uuid.UUID
			for _, h := range hrefs {
				if allowStar && h == "*" {
					args.RemoveAll = true
					continue
				}
				ref, err := href.Parse(h)
				if err != nil || ref.Master != href.Content || ref.IsVersion() {
					fe.add(field, "Invalid content href %q.", h)
					continue
				}
				ids = append(ids, ref.ID)
			}
			return ids
		}
		if req.Add != nil {
			args.Add = parse("add_content_units", *req.Add, false)
		}
		if req.Remove != nil {
			args.Remove = parse("remove_content_units", *req.Remove, true)
		}
		if req.Base != nil {
			ref, err := href.Parse(*req.Base)
			if err != nil || !ref.IsVersion() || ref.ID != repo.ID {
				fe.add("base_version", "Invalid hyperlink - %q is not a version of this repository.", *req.Base)
			} else if _, err := s.DB.GetVersion(ctx, repo.ID, ref.Version); err != nil {
				fe.add("base_version", "Invalid hyperlink - Object does not exist.")
			} else {
				args.BaseVersion = &ref.Version
			}
		}
		if err := fe.err(); err != nil {
			return err
		}
		if err := s.checkContent(r, "add_content_units", args.Add, rt.ContentTypes, fe); err != nil {
			return err
		}
		if err := s.checkContent(r, "remove_content_units", args.Remove, nil, fe); err != nil {
			return err
		}
		if err := fe.err(); err != nil {
			return err
		}
		return s.dispatch(w, r, tasks.Spec{Name: coretask.Modify, Args: args, Exclusive: []string{repoHref}})
	}
}

// checkContent makes sure every id exists and, with allowed, is of an allowed type.
func (s *Server) checkContent(r *http.Request, field string, ids []uuid.UUID, allowed []string, fe fieldErrors) error {
	if len(ids) == 0 {
		return nil
	}
	types, err := s.DB.ContentTypesOf(r.Context(), ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		typ, ok := types[id]
		switch {
		case !ok:
			fe.add(field, "Content %s does not exist.", id)
		case allowed != nil && !contains(allowed, typ):
			fe.add(field, "Content of type %s cannot be added to this repository.", typ)
		}
	}
	return nil
}

func (s *Server) listVersions(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, err := s.repoFromPath(r, rt)
		if err != nil {
			return err
		}
		lq, err := parseList(r, versionFilters, versionOrdering)
		if err != nil {
			return err
		}
		p, err := s.DB.ListVersions(r.Context(), repo.ID, lq.ListParams)
		if err != nil {
			return err
		}
		repoHref := s.types.repoHref(rt.PulpType, repo.ID)
		return writePage(w, r, lq, p.Count, p.Items, func(v db.RepositoryVersion) any { return s.renderVersion(r.Context(), repoHref, v) })
	}
}

func (s *Server) versionFromPath(r *http.Request, rt RepositoryType) (db.Repository, db.RepositoryVersion, error) {
	repo, err := s.repoFromPath(r, rt)
	if err != nil {
		return repo, db.RepositoryVersion{}, err
	}
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || n < 0 {
		return repo, db.RepositoryVersion{}, errNotFound
	}
	v, err := s.DB.GetVersion(r.Context(), repo.ID, n)
	return repo, v, err
}

func (s *Server) readVersion(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, v, err := s.versionFromPath(r, rt)
		if err != nil {
			return err
		}
		return detailJSON(w, r, http.StatusOK, s.renderVersion(r.Context(), s.types.repoHref(rt.PulpType, repo.ID), v))
	}
}

func (s *Server) deleteVersion(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, v, err := s.versionFromPath(r, rt)
		if err != nil {
			return err
		}
		if all, err := s.DB.ListVersions(r.Context(), repo.ID, db.ListParams{Limit: 1}); err != nil {
			return err
		} else if all.Count <= 1 {
			return detail(http.StatusBadRequest, "Cannot delete the only version of a repository.")
		}
		return s.dispatch(w, r, tasks.Spec{Name: coretask.DeleteVersion, Args: coretask.DeleteVersionArgs{Repository: repo.ID, Number: v.Number},
			Exclusive: []string{s.types.repoHref(rt.PulpType, repo.ID)}})
	}
}
