/* SPDX-License-Identifier: MIT */
/*
 * The parent's cgroup (analyzer/cgroup.h): the path of /proc/PID/cgroup on
 * v2, v1 and hybrid hosts, and the systemd unit and container id it names,
 * on paths as systemd, docker, containerd, CRI-O and podman make them.
 */
#include <errno.h>
#include <string.h>

#include "cgroup.h"
#include "check.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_from_proc(void)
{
	char p[64];

	CHECK_EQ(pt_cgroup_from_proc("0::/system.slice/redis-server.service\n", p, sizeof(p)), 0);
	CHECK(!strcmp(p, "/system.slice/redis-server.service"));
	/* hybrid: the unified line wins wherever it is */
	CHECK_EQ(pt_cgroup_from_proc("12:cpu,cpuacct:/x\n1:name=systemd:/user.slice\n0::/a.scope\n",
				     p, sizeof(p)),
		 0);
	CHECK(!strcmp(p, "/a.scope"));
	/* v1: name=systemd, else the first line */
	CHECK_EQ(pt_cgroup_from_proc("3:memory:/m\n1:name=systemd:/init.scope\n", p, sizeof(p)), 0);
	CHECK(!strcmp(p, "/init.scope"));
	CHECK_EQ(pt_cgroup_from_proc("3:memory:/m\n", p, sizeof(p)), 0);
	CHECK(!strcmp(p, "/m"));
	/* cut, never overrun */
	CHECK_EQ(
	    pt_cgroup_from_proc(
		"0::/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", p,
		8),
	    0);
	CHECK_EQ(strlen(p), 7);
	CHECK_EQ(pt_cgroup_from_proc("garbage", p, sizeof(p)), -ENOENT);
	CHECK_EQ(pt_cgroup_from_proc("", p, sizeof(p)), -ENOENT);
	CHECK_EQ(pt_cgroup_from_proc("0::relative\n", p, sizeof(p)), -ENOENT);
	CHECK_EQ(p[0], 0);
}

static void test_unit_container(void)
{
	static const struct {
		const char *path, *unit, *id;
	} c[] = {
	    {"/system.slice/redis-server.service", "redis-server.service", NULL},
	    {"/user.slice/user-1000.slice/session-3.scope", "session-3.scope", NULL},
	    {"/system.slice/docker-" ID ".scope", "docker-" ID ".scope", ID},
	    {"/docker/" ID, NULL, ID},
	    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
	     "cri-containerd-" ID ".scope",
	     "cri-containerd-" ID ".scope", ID},
	    {"/machine.slice/libpod-" ID ".scope/container", "libpod-" ID ".scope", ID},
	    {"/system.slice/foo.service/sub", "foo.service", NULL},
	    {"/", NULL, NULL},
	    {"", NULL, NULL},
	    {"/x/" ID "0", NULL, NULL}, /* 65 digits: not an id */
	};
	char u[256], id[80];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		bool hu = pt_cgroup_unit(c[i].path, u, sizeof(u));
		bool hi = pt_cgroup_container(c[i].path, id, sizeof(id));

		CHECK_EQ(hu, c[i].unit != NULL);
		CHECK_EQ(hi, c[i].id != NULL);
		CHECK(!strcmp(u, c[i].unit ? c[i].unit : ""));
		CHECK(!strcmp(id, c[i].id ? c[i].id : ""));
	}
	CHECK(!pt_cgroup_container("/docker/" ID, id, 64)); /* no room for the id */
	CHECK(!pt_cgroup_unit(NULL, u, sizeof(u)));
}

int main(void)
{
	test_from_proc();
	test_unit_container();
	TEST_DONE();
}
