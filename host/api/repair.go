package api

import (
	"net/http"

	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/repair"
	"github.com/pulpo/pulpo/host/tasks"
)

type repairBody struct {
	VerifyChecksums *bool `json:"verify_checksums,omitempty" doc:"Will verify that the checksum of all stored files matches what saved in the database. Otherwise only the existence of the files will be checked. Enabled by default"`
}

// repairRoutes adds POST repair/ (every artifact) and POST
// {repository_version_href}repair/ (the artifacts of one version), as in
// pulpcore: the first holds the repair lock alone, the second shares its
// repository's lock, so it waits for a running sync or modify and they wait
// for it. Both share the orphan cleanup lock, so no cleanup deletes an
// artifact a repair is about to restore.
func (s *Server) repairRoutes() error {
	bad, notFound := s.spec.ErrorResponse("Bad request"), s.spec.ErrorResponse("Not found")
	async := openapi.Response{Description: "Accepted", Schema: s.spec.AsyncOperation()}
	body := &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": s.spec.RequestOf("Repair", repairBody{})}}
	if err := s.route("POST", href.APIRoot+"repair/", openapi.Operation{ID: "repair_post", Summary: "Repair Artifact Storage",
		Description: "Trigger an asynchronous task that checks for missing or corrupted artifacts, and attempts to redownload them.",
		Tags:        []string{"Repair"}, Body: body,
		Responses: map[int]openapi.Response{202: async, 400: bad},
	}, func(w http.ResponseWriter, r *http.Request) error {
		verify, err := decodeRepair(w, r)
		if err != nil {
			return err
		}
		return s.dispatch(w, r, tasks.Spec{Name: repair.TaskName, Args: repair.Args{VerifyChecksums: verify},
			Exclusive: []string{repair.Resource}, Shared: []string{OrphansResource}})
	}); err != nil {
		return err
	}
	numberParam := openapi.Param{Name: "number", In: "path", Required: true, Schema: &openapi.Schema{Type: "integer"}}
	for _, rt := range s.Types.Repositories {
		one := href.APIRoot + "repositories/" + rt.Plugin + "/" + rt.Endpoint + "/{pulp_id}/"
		if err := s.route("POST", one+"versions/{number}/repair/", openapi.Operation{
			ID: opName("repositories", rt.Plugin, rt.Endpoint, "versions_repair"), Summary: "Repair a repository version",
			Description: "Trigger an asynchronous task to repair a repository version.",
			Tags:        []string{"Repositories: " + tag(rt.Plugin, rt.Endpoint) + " Versions"}, Params: []openapi.Param{numberParam}, Body: body,
			Responses: map[int]openapi.Response{202: async, 400: bad, 404: notFound},
		}, s.repairVersion(rt)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) repairVersion(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, v, err := s.versionFromPath(r, rt)
		if err != nil {
			return err
		}
		verify, err := decodeRepair(w, r)
		if err != nil {
			return err
		}
		return s.dispatch(w, r, tasks.Spec{Name: repair.TaskName,
			Args:   repair.Args{VerifyChecksums: verify, Repository: &repo.ID, Number: v.Number},
			Shared: []string{s.types.repoHref(rt.PulpType, repo.ID), OrphansResource}})
	}
}

// decodeRepair reads verify_checksums, true unless given.
func decodeRepair(w http.ResponseWriter, r *http.Request) (bool, error) {
	var req repairBody
	if err := decodeJSON(w, r, &req); err != nil {
		return false, err
	}
	return req.VerifyChecksums == nil || *req.VerifyChecksums, nil
}
