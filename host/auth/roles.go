package auth

import (
	"strings"

	"github.com/pulpo/pulpo/host/db"
)

// Kind is the master model of a typed object, which decides the actions
// its roles grant.
type Kind string

// Kinds of typed objects, named by their URL segment.
const (
	Repository   Kind = "repositories"
	Remote       Kind = "remotes"
	Distribution Kind = "distributions"
	Publication  Kind = "publications"
	ContentGuard Kind = "contentguards"
)

var singular = map[Kind]string{
	Repository: "repository", Remote: "remote", Distribution: "distribution",
	Publication: "publication", ContentGuard: "contentguard",
}

// Model is Pulp's permission subject of one plugin type: plugin "file",
// endpoint "file", kind Repository is file.filerepository; endpoint
// "container-push" gives container.containerpushrepository.
type Model struct {
	App  string // the plugin, e.g. "file"
	Name string // e.g. "filerepository"
	Kind Kind
}

// ModelOf names the model of a typed family.
func ModelOf(kind Kind, plugin, endpoint string) Model {
	return Model{App: plugin, Name: strings.NewReplacer("-", "", "_", "").Replace(endpoint) + singular[kind], Kind: kind}
}

// Perm is a permission on the model, e.g. Perm("view") = "file.view_filerepository".
func (m Model) Perm(action string) string { return m.App + "." + action + "_" + m.Name }

// Role is the name of one of the model's built-in roles, e.g. Role("owner").
func (m Model) Role(suffix string) string { return m.App + "." + m.Name + "_" + suffix }

// VersionDelete is the permission to delete a repository version.
func (m Model) VersionDelete() string { return m.Perm("delete") + "_version" }

// ownerActions are what an owner may do on each kind, as in Pulp's
// <plugin>.<model>_owner roles.
var ownerActions = map[Kind][]string{
	Repository:   {"view", "change", "delete", "modify", "sync", "repair", "manage_roles"},
	Remote:       {"view", "change", "delete", "manage_roles"},
	Distribution: {"view", "change", "delete", "manage_roles"},
	Publication:  {"view", "delete", "manage_roles"},
	ContentGuard: {"view", "change", "delete", "download", "manage_roles"},
}

// Roles are the model's built-in roles: _creator (add), _owner (everything
// on the objects it holds it on), _viewer (view), and for content guards
// _downloader (download through the guard).
func (m Model) Roles() []db.Role {
	var owner []string
	for _, a := range ownerActions[m.Kind] {
		owner = append(owner, m.Perm(a))
	}
	if m.Kind == Repository {
		owner = append(owner, m.VersionDelete())
	}
	roles := []db.Role{
		{Name: m.Role("creator"), Description: "Can create " + m.Name + " objects.", Permissions: []string{m.Perm("add")}},
		{Name: m.Role("owner"), Description: "Can do everything on a " + m.Name + ".", Permissions: owner},
		{Name: m.Role("viewer"), Description: "Can view a " + m.Name + ".", Permissions: []string{m.Perm("view")}},
	}
	if m.Kind == ContentGuard {
		roles = append(roles, db.Role{Name: m.Role("downloader"), Description: "Can download content protected by a " + m.Name + ".",
			Permissions: []string{m.Perm("download")}})
	}
	return roles
}

// Core permissions and roles.
const (
	TaskView      = "core.view_task"
	TaskChange    = "core.change_task"
	TaskDelete    = "core.delete_task"
	TaskOwner     = "core.task_owner"
	UploadView    = "core.view_upload"
	UploadChange  = "core.change_upload"
	UploadDelete  = "core.delete_upload"
	UploadOwner   = "core.upload_owner"
	ArtifactDel   = "core.delete_artifact"
	OrphansDelete = "core.delete_orphans"
	UserView      = "auth.view_user"
	UserAdd       = "auth.add_user"
	UserChange    = "auth.change_user"
	UserDelete    = "auth.delete_user"
	GroupView     = "core.view_group"
	GroupAdd      = "core.add_group"
	GroupChange   = "core.change_group"
	GroupDelete   = "core.delete_group"
	RoleAdd       = "core.add_role"
	RoleChange    = "core.change_role"
	RoleDelete    = "core.delete_role"
)

// CoreRoles are the built-in roles of core objects.
func CoreRoles() []db.Role {
	return []db.Role{
		{Name: TaskOwner, Description: "Can view, cancel and delete a task.", Permissions: []string{TaskView, TaskChange, TaskDelete}},
		{Name: "core.task_viewer", Description: "Can view a task.", Permissions: []string{TaskView}},
		{Name: UploadOwner, Description: "Can use and delete an upload.", Permissions: []string{UploadView, UploadChange, UploadDelete}},
		{Name: "core.user_viewer", Description: "Can view users.", Permissions: []string{UserView}},
		{Name: "core.group_viewer", Description: "Can view groups.", Permissions: []string{GroupView}},
		{Name: "core.group_owner", Description: "Can change and delete a group and manage its members.",
			Permissions: []string{GroupView, GroupChange, GroupDelete}},
	}
}
