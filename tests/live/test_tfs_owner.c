/* SPDX-License-Identifier: MIT */
/*
 * What of tracefs is ptescoped's to undo, against a fake tracefs (plain
 * files): a restore or a crash repair writes a file back only while it
 * still holds what ptescoped wrote; only the kprobe events it recorded are
 * removed; the state file is refused when it cannot be trusted (owner,
 * mode, a symlink, its directory) or names anything outside the allow-list;
 * the host-wide locks keep two runs off one top level or instance; each
 * instance has its own kprobe group.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakefs.h"
#include "check.h"
#include "tfs.h"
#include "tfs_lock.h"
#include "tfs_state.h"

/* A fresh fake tracefs at DIR/NAME, its state file path in @state. */
static void fresh(const char *dir, const char *name, char *t, size_t tlen, char *state,
		  size_t slen)
{
	char cmd[1200];

	snprintf(t, tlen, "%s/%s", dir, name);
	snprintf(state, slen, "%s/%s-state/tracefs-state", dir, name);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s-state'", t, t);
	if (system(cmd))
		fprintf(stderr, "could not clean %s\n", t);
	mkdir(t, 0700);
	mk(t, "instances");
	mk(t, "options");
	mk(t, "events");
	put(t, "current_tracer", "nop\n");
	put(t, "tracing_on", "1\n");
	put(t, "set_ftrace_filter", "#### all functions enabled ####\n");
	put(t, "options/record-cmd", "1\n");
	put(t, "kprobe_events", "");
}

/* Appends a kprobe_events line as the kernel would list it, and makes its event directory. */
static void kprobe_add(const char *t, const char *key)
{
	char p[1024], line[256], *cur = get(t, "kprobe_events"), buf[4096];

	snprintf(buf, sizeof(buf), "%s", cur ? cur : "");
	snprintf(line, sizeof(line), "p:%s kernel_clone\n", key);
	strncat(buf, line, sizeof(buf) - strlen(buf) - 1);
	put(t, "kprobe_events", buf);
	snprintf(p, sizeof(p), "events/%.*s", (int)strcspn(key, "/"), key);
	mk(t, p);
	snprintf(p, sizeof(p), "events/%s", key);
	mk(t, p);
	snprintf(p, sizeof(p), "events/%s/enable", key);
	put(t, p, "0\n");
}

static bool kprobe_listed(const char *t, const char *key)
{
	char *cur = get(t, "kprobe_events"), want[256];

	snprintf(want, sizeof(want), ":%s ", key);
	return cur && strstr(cur, want);
}

/* The fake's kprobe_events takes appends as plain text; removals ("-:G/E")
 * are applied by this observer, as the kernel would. */
static void kprobe_observer(void *ctx, const char *rel, const char *value, bool append, int result,
			    uint64_t ns)
{
	const char *t = ctx;
	char key[200], *cur, buf[4096], *o = buf;

	(void)ns;
	if (strcmp(rel, "kprobe_events") || !append || result || value[0] != '-')
		return;
	snprintf(key, sizeof(key), ":%.*s ", (int)strcspn(value + 2, "\n"), value + 2);
	cur = get(t, "kprobe_events");
	buf[0] = 0;
	for (const char *s = cur; s && *s;) {
		size_t l = strcspn(s, "\n");

		/* drop the removal line the append added, and the removed event */
		if (strncmp(s, "-:", 2) && !(memmem(s, l, key, strlen(key))))
			o += snprintf(o, sizeof(buf) - (size_t)(o - buf), "%.*s\n", (int)l, s);
		s += l + (s[l] == '\n');
	}
	put(t, "kprobe_events", buf);
}

/* 1. Another tool took a file after our write: a restore leaves it, a crash repair too. */
static void test_restore_only_ours(const char *dir)
{
	char t[512], state[600], err[512], msg[1024];
	struct pd_tfs *a;

	fresh(dir, "ours", t, sizeof(t), state, sizeof(state));
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(!pd_tfs_write(a, "current_tracer", "function_graph", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "options/record-cmd", "0", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "tracing_on", "0", err, sizeof(err)));
	/* trace-cmd takes the tracer meanwhile */
	put(t, "current_tracer", "function\n");
	CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	CHECK(!strcmp(get(t, "current_tracer"), "function\n"));
	CHECK(strstr(pd_tfs_skipped(a), "current_tracer") != NULL);
	/* what was still ours went back */
	CHECK(!strcmp(get(t, "options/record-cmd"), "1"));
	CHECK(!strcmp(get(t, "tracing_on"), "1"));
	CHECK(access(state, F_OK) != 0);
	pd_tfs_free(a);

	/* killed; then, before the repair, another tool sets the filter */
	fresh(dir, "ours-kill", t, sizeof(t), state, sizeof(state));
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(!pd_tfs_write(a, "set_ftrace_filter", "kernel_clone", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "current_tracer", "function_graph", err, sizeof(err)));
	pd_tfs_free(a);
	put(t, "set_ftrace_filter", "do_sys_open\n");
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == 1);
	CHECK(strstr(msg, "left as another tool set them: set_ftrace_filter") != NULL);
	CHECK(!strcmp(get(t, "set_ftrace_filter"), "do_sys_open\n"));
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
	CHECK(access(state, F_OK) != 0);
	pd_tfs_free(a);
}

/* 2. Only the kprobe events this run created go; another daemon's group and
 * an unrecorded event of our group stay. */
static void test_only_recorded_kprobes(const char *dir)
{
	char t[512], state[600], err[512], msg[1024];
	struct pd_tfs *a;

	fresh(dir, "kp", t, sizeof(t), state, sizeof(state));
	kprobe_add(t, "ptescope_other/kernel_clone");
	kprobe_add(t, "kprobes/mine");
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, kprobe_observer, t);
	CHECK(!pd_tfs_append(a, "kprobe_events", "p:ptescope/kernel_clone kernel_clone\n", err,
			     sizeof(err)));
	/* the fake lists what is appended; its event directory as the kernel makes it */
	mk(t, "events/ptescope");
	mk(t, "events/ptescope/kernel_clone");
	put(t, "events/ptescope/kernel_clone/enable", "1\n");
	/* an event of our group we did not create (another run of the default instance) */
	kprobe_add(t, "ptescope/copy_process");
	CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	CHECK(!kprobe_listed(t, "ptescope/kernel_clone"));
	CHECK(!strcmp(get(t, "events/ptescope/kernel_clone/enable"), "0"));
	CHECK(kprobe_listed(t, "ptescope/copy_process"));
	CHECK(kprobe_listed(t, "ptescope_other/kernel_clone"));
	CHECK(kprobe_listed(t, "kprobes/mine"));
	pd_tfs_free(a);

	/* killed after creating one: the repair removes that one only */
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(!pd_tfs_append(a, "kprobe_events", "p:ptescope/dup_mmap dup_mmap\n", err,
			     sizeof(err)));
	pd_tfs_free(a);
	CHECK(strstr(get(t, "kprobe_events"), "ptescope/dup_mmap") != NULL);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, kprobe_observer, t);
	CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == 1);
	CHECK(!kprobe_listed(t, "ptescope/dup_mmap"));
	CHECK(kprobe_listed(t, "ptescope/copy_process"));
	CHECK(kprobe_listed(t, "ptescope_other/kernel_clone"));
	pd_tfs_free(a);
}

/* Writes @body as the state file @state with @mode; returns the repair's result. */
static int repair_with(const char *t, const char *state, int version, const char *body,
		       mode_t mode, char *msg, size_t len)
{
	char d[600], boot[64] = "-";
	struct pd_tfs *a;
	FILE *f;
	int fd, r;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, boot, sizeof(boot) - 1);

		boot[n > 0 ? n : 0] = 0;
		boot[strcspn(boot, "\n")] = 0;
		close(fd);
	}
	snprintf(d, sizeof(d), "%s", state);
	*strrchr(d, '/') = 0;
	mkdir(d, 0700);
	unlink(state);
	f = fopen(state, "w");
	if (!f)
		return -999;
	fprintf(f, "ptescoped-tracefs-state %d\nboot %s\npid 999999\n%s", version, boot, body);
	fclose(f);
	chmod(state, mode);
	if (pd_tfs_new(t, state, &a))
		return -998;
	r = pd_tfs_repair(a, NULL, msg, len);
	pd_tfs_free(a);
	return r;
}

/* 3. A state file is refused unless it is ours alone and names only tracefs files of the list. */
static void test_state_validated(const char *dir)
{
	char t[512], state[600], msg[1024], victim[700], link[700], d[600];

	fresh(dir, "val", t, sizeof(t), state, sizeof(state));
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	put(dir, "victim", "precious\n");
	/* "file ../victim 6f776e6564" (hex of "owned") */
	CHECK(repair_with(t, state, 2, "file ../victim 6f776e6564\n", 0600, msg, sizeof(msg)) ==
	      -EINVAL);
	CHECK(strstr(msg, "not a file ptescoped restores") != NULL);
	CHECK(!strcmp(get(dir, "victim"), "precious\n"));
	CHECK(access(state, F_OK) == 0); /* kept, for whoever looks */
	/* the same in a version 1 file, which that version restored unchecked */
	CHECK(repair_with(t, state, 1, "file ../victim 6f776e6564\n", 0600, msg, sizeof(msg)) ==
	      -EINVAL);
	CHECK(!strcmp(get(dir, "victim"), "precious\n"));
	CHECK(repair_with(t, state, 2, "file events/../../../victim 6f776e6564\n", 0600, msg,
			  sizeof(msg)) == -EINVAL);
	CHECK(!strcmp(get(dir, "victim"), "precious\n"));
	CHECK(repair_with(t, state, 2, "instance ../../x\n", 0600, msg, sizeof(msg)) == -EINVAL);
	CHECK(repair_with(t, state, 2, "kprobe kprobes/other\n", 0600, msg, sizeof(msg)) == -EINVAL);
	CHECK(repair_with(t, state, 2, "file current_tracer 6e6f70\nweird line\n", 0600, msg,
			  sizeof(msg)) == -EINVAL);
	/* owner and mode: group or others could have written it */
	CHECK(repair_with(t, state, 2, "file current_tracer 6e6f70\n", 0644, msg, sizeof(msg)) ==
	      -EPERM);
	CHECK(strstr(msg, "not trusted") != NULL);
	CHECK(repair_with(t, state, 2, "file current_tracer 6e6f70\n", 0620, msg, sizeof(msg)) ==
	      -EPERM);
	/* its directory writable by others */
	snprintf(d, sizeof(d), "%s", state);
	*strrchr(d, '/') = 0;
	chmod(d, 0777);
	CHECK(repair_with(t, state, 2, "file current_tracer 6e6f70\n", 0600, msg, sizeof(msg)) ==
	      -EPERM);
	CHECK(strstr(msg, "which others can write") != NULL);
	chmod(d, 0700);
	/* a symlink in its place */
	unlink(state);
	snprintf(link, sizeof(link), "%s/linked", dir);
	put(dir, "linked", "ptescoped-tracefs-state 2\n");
	chmod(link, 0600);
	CHECK(!symlink(link, state));
	{
		struct pd_tfs *a;

		CHECK(!pd_tfs_new(t, state, &a));
		CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == -EPERM);
		CHECK(strstr(msg, "symlink") != NULL);
		pd_tfs_free(a);
	}
	unlink(state);
	/* a valid one is used, and a file restored beneath tracefs only */
	put(t, "current_tracer", "function_graph\n");
	CHECK(repair_with(t, state, 2,
			  "file current_tracer 6e6f70\nours current_tracer 66756e6374696f6e5f677261"
			  "7068\n",
			  0600, msg, sizeof(msg)) == 1);
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
	/* a tracefs file that is a symlink is not followed */
	unlink(victim);
	put(dir, "victim", "precious\n");
	snprintf(link, sizeof(link), "%s/options/record-cmd", t);
	unlink(link);
	CHECK(!symlink(victim, link));
	CHECK(repair_with(t, state, 2, "file options/record-cmd 31\npending options/record-cmd\n", 0600,
			  msg, sizeof(msg)) < 0);
	CHECK(!strcmp(get(dir, "victim"), "precious\n"));
	/* version 1 (before ours/pending were recorded): every file restored, as then */
	put(t, "current_tracer", "function\n");
	unlink(link);
	put(t, "options/record-cmd", "0\n");
	CHECK(repair_with(t, state, 2, "", 0600, msg, sizeof(msg)) == 0);
	{
		char body[300];
		char boot[64] = "-";
		FILE *f;
		int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, boot, sizeof(boot) - 1) : -1;
		struct pd_tfs *a;

		if (fd >= 0)
			close(fd);
		boot[n > 0 ? n : 0] = 0;
		boot[strcspn(boot, "\n")] = 0;
		snprintf(body, sizeof(body),
			 "ptescoped-tracefs-state 1\nboot %s\npid 999999\nfile current_tracer "
			 "6e6f70\n",
			 boot);
		f = fopen(state, "w");
		fputs(body, f);
		fclose(f);
		chmod(state, 0600);
		CHECK(!pd_tfs_new(t, state, &a));
		CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == 1);
		CHECK(!strcmp(get(t, "current_tracer"), "nop"));
		pd_tfs_free(a);
	}
}

/* 4. Host-wide locks: one top level, one instance, one run at a time. */
static void test_locks(const char *dir)
{
	char t[512], state[600], state2[sizeof(state) + 2], err[512], msg[1024], locks[600];
	struct pd_tfs *a, *b;
	struct pd_tfs_lock *l1, *l2;

	fresh(dir, "lock", t, sizeof(t), state, sizeof(state));
	snprintf(state2, sizeof(state2), "%s-2", state);
	snprintf(locks, sizeof(locks), "%s/locks", dir);
	CHECK(!pd_tfs_lock_take(locks, t, "instance-ptescoped", &l1, err, sizeof(err)));
	CHECK(pd_tfs_lock_take(locks, t, "instance-ptescoped", &l2, err, sizeof(err)) == -EBUSY);
	CHECK(strstr(err, "in use by pid") != NULL);
	pd_tfs_lock_release(l1);
	CHECK(!pd_tfs_lock_take(locks, t, "instance-ptescoped", &l2, err, sizeof(err)));
	pd_tfs_lock_release(l2);

	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(!pd_tfs_new(t, state2, &b));
	pd_tfs_set_lock_dir(a, locks);
	pd_tfs_set_lock_dir(b, locks);
	CHECK(!pd_tfs_write(a, "current_tracer", "function_graph", err, sizeof(err)));
	/* the second run cannot touch the top level while the first has it */
	CHECK(pd_tfs_write(b, "options/record-cmd", "0", err, sizeof(err)) == -EBUSY);
	CHECK(strstr(err, "top level") != NULL);
	CHECK(!strcmp(get(t, "options/record-cmd"), "1\n"));
	/* nor repair it from a state file of a dead run */
	pd_tfs_free(a); /* "killed" while holding the top level: the lock goes with it */
	CHECK(!pd_tfs_write(b, "options/record-cmd", "0", err, sizeof(err)));
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_lock_dir(a, locks);
	CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == -EBUSY);
	CHECK(strstr(msg, "repaired once it is free") != NULL);
	CHECK(!strcmp(get(t, "current_tracer"), "function_graph"));
	CHECK(access(state, F_OK) == 0);
	CHECK(!pd_tfs_restore(b, err, sizeof(err)));
	CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == 1);
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
	CHECK(access(state, F_OK) != 0);
	pd_tfs_free(a);
	pd_tfs_free(b);
}

/* 5. A kprobe group per instance. */
static void test_groups(void)
{
	char g1[64], g2[64], g3[64];

	CHECK(!pd_tfs_kprobe_group("ptescoped", g1, sizeof(g1)) && !strcmp(g1, "ptescope"));
	CHECK(!pd_tfs_kprobe_group(NULL, g1, sizeof(g1)) && !strcmp(g1, "ptescope"));
	CHECK(!pd_tfs_kprobe_group("other", g1, sizeof(g1)) && !strcmp(g1, "ptescope_other"));
	CHECK(!pd_tfs_kprobe_group("a-b", g2, sizeof(g2)) && !strncmp(g2, "ptescope_a_b_", 13));
	CHECK(!pd_tfs_kprobe_group("a_b", g3, sizeof(g3)) && !strcmp(g3, "ptescope_a_b"));
	CHECK(strcmp(g2, g3));
	CHECK(!pd_tfs_kprobe_group("a.b", g3, sizeof(g3)) && strcmp(g2, g3));
	CHECK(!pd_tfs_kprobe_group("0123456789012345678901234567890123456789-long", g1, sizeof(g1)));
	CHECK(strlen(g1) < 64 && strspn(g1, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(g1));
	CHECK(pd_tfs_kprobe_key_ok("ptescope/x") && pd_tfs_kprobe_key_ok("ptescope_a_b/cpr_pass_end"));
	CHECK(!pd_tfs_kprobe_key_ok("ptescopex/x") && !pd_tfs_kprobe_key_ok("kprobes/x") &&
	      !pd_tfs_kprobe_key_ok("ptescope/../x"));
}

int main(void)
{
	char dir[] = "/tmp/ptescoped-owner-XXXXXX", cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_restore_only_ours(dir);
	test_only_recorded_kprobes(dir);
	test_state_validated(dir);
	test_locks(dir);
	test_groups();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	TEST_DONE();
}
