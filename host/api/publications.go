package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/publish"
	"github.com/pulpo/pulpo/host/tasks"
)

// publicationBody documents the fields common to every publication type.
type publicationBody struct {
	base
	RepositoryVersion *string `json:"repository_version,omitempty" format:"uri" doc:"The repository version to publish."`
	Repository        *string `json:"repository,omitempty" format:"uri" doc:"A URI of the repository to be published; its latest version is published."`
}

var publicationFilters = append(append(commonFilters(),
	filter{Param: "repository_version", Field: "repository_version", Kind: kVersion, Doc: "Filter results where repository_version matches value"},
	filter{Param: "repository", Field: "repository", Kind: kHref, Doc: "Repository referenced by HREF"},
), timeFilters("pulp_created", "pulp_created")...)

var publicationOrdering = []string{"pulp_id", "pulp_created", "pulp_last_updated"}

func (s *Server) renderPublicationAny(p db.Publication) any { return s.renderPublication(p) }

func (s *Server) renderPublication(p db.Publication) map[string]any {
	out := map[string]any{}
	if len(p.Fields) > 0 {
		_ = json.Unmarshal(p.Fields, &out)
	}
	repoHref := s.types.repoHref(p.RepositoryType, p.RepositoryID)
	for k, v := range map[string]any{
		"pulp_href": publish.Href(p.PulpType, p.ID), "prn": prn(p.PulpType+"publication", p.ID),
		"pulp_created": p.CreatedAt, "pulp_last_updated": p.UpdatedAt, "pulp_type": p.PulpType,
		"repository_version": href.Version(repoHref, p.VersionNumber), "repository": repoHref,
	} {
		out[k] = v
	}
	return out
}

func (s *Server) listPublications(pulpType string, filters []filter) handlerFunc {
	// Only complete publications are listed: the others are being written.
	fetch := func(ctx context.Context, p db.ListParams) (db.Page[db.Publication], error) {
		p.Filters = append(p.Filters, db.Filter{Field: "complete", Value: true})
		return s.DB.ListPublications(ctx, p)
	}
	return listOf(filters, publicationOrdering, pulpType, fetch, s.renderPublicationAny)
}

func (s *Server) publicationRoutes() error {
	generic := s.spec.Component("Publication", openapi.SchemaOf(publicationBody{}))
	filters := append(publicationFilters, typeFilters()...)
	if err := s.route("GET", href.APIRoot+"publications/", openapi.Operation{ID: "publications_list", Summary: "List publications",
		Tags: []string{"Publications"}, Params: listParams(filters, publicationOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(generic)}, 400: s.spec.ErrorResponse("Bad request")},
	}, s.listPublications("", filters)); err != nil {
		return err
	}
	for _, pt := range s.Types.Publications {
		resp, req, patch := s.schemas(strings.ReplaceAll(tag(pt.Plugin, pt.Endpoint), " ", ""), "Publication", publicationBody{}, pt.Fields)
		if err := s.familyRoutes(family{
			master: href.Publications, plugin: pt.Plugin, endpoint: pt.Endpoint, noun: pt.PulpType + " publication",
			resp: resp, req: req, patch: patch, filters: publicationFilters, ordering: publicationOrdering,
			list:   s.listPublications(pt.PulpType, publicationFilters),
			create: s.createPublication(pt), read: readOne(func(r *http.Request) (db.Publication, error) { return s.publicationFromPath(r, pt) }, s.renderPublication), del: s.deletePublication(pt),
			createAsync: true,
		}); err != nil {
			return err
		}
	}
	return nil
}

// publicationFromPath loads a complete publication of type pt.
func (s *Server) publicationFromPath(r *http.Request, pt PublicationType) (db.Publication, error) {
	p, err := typedFromPath(r, s.DB.GetPublication, func(x db.Publication) string { return x.PulpType }, pt.PulpType)
	if err == nil && !p.Complete {
		return p, errNotFound
	}
	return p, err
}

func (s *Server) deletePublication(pt PublicationType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.publicationFromPath(r, pt)
		if err != nil {
			return err
		}
		if err := s.DB.DeletePublication(r.Context(), p.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// createPublication resolves the version to publish and dispatches the task.
func (s *Server) createPublication(pt PublicationType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		fe := fieldErrors{}
		known := map[string]bool{"repository": true, "repository_version": true}
		for _, f := range pt.Fields {
			known[f.Name] = true
		}
		o.unexpected(fe, known)
		fields := o.pluginFields(fe, pt.Fields, nil, true)
		_, hasRepo := o["repository"]
		_, hasVersion := o["repository_version"]
		if hasRepo == hasVersion {
			fe.add("non_field_errors", "Either the 'repository' or 'repository_version' need to be specified but not both.")
		}
		if err := fe.err(); err != nil {
			return err
		}
		var repo *db.Repository
		number := -1
		field := "repository"
		if hasRepo {
			if repo, err = s.repositoryRef(r.Context(), o, fe, field); err != nil {
				return err
			}
			if repo != nil {
				number = repo.LatestVersion
			}
		} else {
			field = "repository_version"
			var v *db.RepositoryVersion
			if repo, v, err = s.versionRef(r.Context(), o, fe, field); err != nil {
				return err
			}
			if v != nil {
				number = v.Number
			}
		}
		if repo == nil && len(fe) == 0 {
			fe.add(field, "This field may not be null.")
		}
		if err := fe.err(); err != nil {
			return err
		}
		if p, _ := segments(repo.PulpType); p != pt.Plugin {
			return fieldError(field, "Type for Repository '%s' does not match Publication type %s.", repo.PulpType, pt.PulpType)
		}
		repoHref := s.types.repoHref(repo.PulpType, repo.ID)
		return s.dispatch(w, r, tasks.Spec{Name: publish.TaskPublish, Shared: []string{repoHref},
			Args: publish.Args{Type: pt.PulpType, Repository: repo.ID, Version: number, Fields: fields}})
	}
}
