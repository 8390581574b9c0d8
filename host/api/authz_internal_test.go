package api

import "testing"

// TestAccessFor pins the rule of representative routes, and that a route
// nobody described is for superusers only.
func TestAccessFor(t *testing.T) {
	t.Parallel()
	const root = "/pulp/api/v3/"
	for _, c := range []struct {
		method, path string
		want         access
	}{
		{"GET", root + "status/", access{public: true}},
		{"GET", root + "docs/api.json", access{public: true}},
		{"GET", root + "repositories/file/file/", access{scope: `file.view\_filerepository`}},
		{"POST", root + "repositories/file/file/", access{perm: "file.add_filerepository", owner: "file.filerepository_owner"}},
		{"GET", root + "repositories/file/file/{pulp_id}/", access{object: true, view: "file.view_filerepository", perm: "file.view_filerepository"}},
		{"PATCH", root + "repositories/file/file/{pulp_id}/", access{object: true, view: "file.view_filerepository", perm: "file.change_filerepository"}},
		{"DELETE", root + "repositories/file/file/{pulp_id}/", access{object: true, view: "file.view_filerepository", perm: "file.delete_filerepository"}},
		{"POST", root + "repositories/file/file/{pulp_id}/sync/", access{object: true, view: "file.view_filerepository", perm: "file.sync_filerepository"}},
		{"DELETE", root + "repositories/file/file/{pulp_id}/versions/{number}/", access{object: true, view: "file.view_filerepository", perm: "file.delete_filerepository_version"}},
		{"POST", root + "repositories/container/container-push/{pulp_id}/add_role/", access{object: true, view: "container.view_containerpushrepository", perm: "container.manage_roles_containerpushrepository"}},
		{"GET", root + "repositories/", access{scope: `%.view\_%repository`, kind: "repositories"}},
		{"GET", root + "contentguards/core/rbac/{pulp_id}/", access{object: true, view: "core.view_rbaccontentguard", perm: "core.view_rbaccontentguard"}},
		{"GET", root + "tasks/", access{scope: `core.view\_task`}},
		{"PATCH", root + "tasks/{pulp_id}/", access{object: true, view: "core.view_task", perm: "core.change_task"}},
		{"POST", root + "uploads/", access{owner: "core.upload_owner"}},
		{"POST", root + "content/file/files/", access{}},
		{"DELETE", root + "artifacts/{pulp_id}/", access{perm: "core.delete_artifact"}},
		{"POST", root + "orphans/cleanup/", access{admin: true}},
		{"POST", root + "something/new/", access{admin: true}},
		{"POST", root + "users/{pulp_id}/roles/", access{perm: "auth.change_user"}},
		{"POST", root + "groups/{pulp_id}/roles/", access{object: true, view: "core.view_group", perm: "core.manage_roles_group"}},
		{"GET", root + "roles/", access{}},
		{"GET", "/elsewhere/", access{admin: true}},
	} {
		if got := accessFor(c.method, c.path); got != c.want {
			t.Errorf("%s %s: %+v, want %+v", c.method, c.path, got, c.want)
		}
	}
}
