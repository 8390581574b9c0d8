package api

import (
	"errors"
	"net/http"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/stages"
	"github.com/pulpo/pulpo/host/tasks"
)

// syncBody documents sync/'s request.
type syncBody struct {
	Remote *string `json:"remote,omitempty" format:"uri" doc:"A remote to sync from. This will override a remote set on repository."`
	Mirror bool    `json:"mirror,omitempty" doc:"If true, the repository version will hold exactly what the remote offers; otherwise what it offers is added."`
}

func (s *Server) syncRepository(rt RepositoryType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		repo, err := s.repoFromPath(r, rt)
		if err != nil {
			return err
		}
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		fe := fieldErrors{}
		known := map[string]bool{"remote": true, "mirror": true}
		for _, f := range rt.SyncOptions {
			known[f.Name] = true
		}
		o.unexpected(fe, known)
		mirror := false
		if m, _ := scalar[bool](o, fe, "mirror", false, "Must be a valid boolean."); m != nil {
			mirror = *m
		}
		remoteID := repo.RemoteID
		if ref, _ := o.hrefOf(fe, "remote", href.Remotes); ref != nil {
			remoteID = &ref.ID
		}
		options := o.pluginFields(fe, rt.SyncOptions, nil, true)
		if err := fe.err(); err != nil {
			return err
		}
		if remoteID == nil {
			return fieldError("remote", "No remote specified and the repository has no remote.")
		}
		typ, err := s.DB.RemoteType(r.Context(), *remoteID)
		if errors.Is(err, db.ErrNotFound) {
			return fieldError("remote", "Invalid hyperlink - Object does not exist.")
		}
		if err != nil {
			return err
		}
		if !contains(rt.RemoteTypes, typ) {
			return fieldError("remote", "A %s remote cannot sync a %s repository.", typ, rt.PulpType)
		}
		repoHref := s.types.repoHref(rt.PulpType, repo.ID)
		args := stages.SyncArgs{Repository: repo.ID, RepoHref: repoHref, Remote: *remoteID, Mirror: mirror, Plugin: rt.Plugin,
			Options: options, ContentTypes: rt.ContentTypes, RepoKeys: s.repoKeys(rt)}
		return s.dispatch(w, r, tasks.Spec{Name: stages.TaskSync, Args: args,
			Exclusive: []string{repoHref}, Shared: []string{s.remoteHrefOf(typ, *remoteID)}})
	}
}

// repoKeys maps a repository type's content types to their repository keys.
func (s *Server) repoKeys(rt RepositoryType) map[string][]string {
	keys := map[string][]string{}
	for _, ct := range rt.ContentTypes {
		if c, ok := s.types.contents[ct]; ok && len(c.RepoKeyFields) > 0 {
			keys[ct] = c.RepoKeyFields
		}
	}
	return keys
}
