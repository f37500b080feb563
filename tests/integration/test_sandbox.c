/*
 * test_sandbox.c - every layer of the privilege separation, checked on the
 * real bulkheadd and its real workers: a live worker's status (seccomp,
 * no_new_privs, capabilities), its installed filters read back with ptrace
 * and compared with our own compile of the policy files, the must-deny list
 * evaluated on that program, its namespaces and root, the parent's reduced
 * capabilities and deny list, --check-policy, start-up with a broken
 * policy, --sandbox=chroot, guest-side escape attempts, and (with
 * --enable-test-hooks) what a forbidden call does under kill, trap and log.
 * Runs in: the test process (root); bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "itest.h"
#include "policy.h"

/* The default: no device nodes, no file capabilities, so no MKNOD, SETFCAP. */
#define SBX_WORKER_CAPS                                                                            \
	((1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_FOWNER) |                 \
	 (1ull << CAP_FSETID) | (1ull << CAP_SETGID) | (1ull << CAP_SETUID))
#define SBX_PRIV_META_CAPS ((1ull << CAP_MKNOD) | (1ull << CAP_SETFCAP))
#define SBX_PARENT_NS_CAPS     (SBX_WORKER_CAPS | (1ull << CAP_SETPCAP) | (1ull << CAP_SYS_ADMIN))
#define SBX_PARENT_CHROOT_CAPS (SBX_WORKER_CAPS | (1ull << CAP_SETPCAP) | (1ull << CAP_SYS_CHROOT))

/* ---- helpers ---- */

static void start_with(const char *const *extra, unsigned nqueues)
{
	it_launch(extra, nqueues);
}

static void start_default(void)
{
	start_with(NULL, 2);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
}

static void start_chroot(void)
{
	static const char *const extra[] = {"--sandbox=chroot", NULL};

	start_with(extra, 2);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
}

/* The workers of the daemon (its children), at least want of them. */
static int workers(pid_t *out, int want)
{
	int n;

	cr_assert_eq(hx_wait_children(it_d.hd_pid, want, 5000), 0, "expected %d workers", want);
	n = hx_children(it_d.hd_pid, out, 8);
	cr_assert_eq(n, want);
	return n;
}

/* Run argv to completion; its stdout and stderr into out. Exit code or 128+signal. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
	int r = hx_run_capture(argv, NULL, NULL, out, cap);

	cr_assert_geq(r, 0, "run %s: %s", argv[0], strerror(-r));
	return r;
}

static void policy_dir(char *buf, size_t len)
{
	cr_assert_eq(pol_default_dir(1, buf, len), 0);
}

/* Our own compile of a policy file, exported as the kernel will see it. */
static size_t compile_policy(const char *file, int deny, struct sock_filter *out, size_t max)
{
	char dir[PATH_MAX], err[600];
	scmp_filter_ctx ctx;
	struct pol_set *ps;
	unsigned nrules;
	struct stat st;
	int fd, r;

	policy_dir(dir, sizeof(dir));
	ps = pol_load(dir, file, err, sizeof(err));
	cr_assert(ps, "%s", err);
	if (deny)
		r = pol_compile_denylist(ps, SCMP_ACT_TRAP, &ctx, &nrules, err, sizeof(err));
	else
		r = pol_compile(ps, SCMP_ACT_TRAP, &ctx, &nrules, err, sizeof(err));
	cr_assert_eq(r, 0, "%s", err);
	fd = memfd_create("expected", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(seccomp_export_bpf(ctx, fd), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_leq((size_t)st.st_size, max * sizeof(*out));
	cr_assert_eq(pread(fd, out, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	seccomp_release(ctx);
	pol_free(ps);
	return (size_t)st.st_size / sizeof(*out);
}

/* Filter idx of a stopped tracee: 0 is the oldest (the kernel counts back from
 * the newest), so here 0 = the parent's deny list, 1 = the worker's own. */
static long get_filter(pid_t pid, unsigned long idx, struct sock_filter *out, size_t max)
{
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)idx, NULL);

	if (n <= 0 || (size_t)n > max)
		return n;
	return ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)idx, out);
}

static void trace_stop(pid_t pid)
{
	int st;

	cr_assert_eq(ptrace(PTRACE_SEIZE, pid, NULL, NULL), 0, "PTRACE_SEIZE: %s", strerror(errno));
	cr_assert_eq(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL), 0);
	cr_assert_eq(waitpid(pid, &st, __WALL), pid);
}

/* A classic-BPF interpreter for seccomp programs: the action for data. */
static uint32_t bpf_run(const struct sock_filter *p, size_t n, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};

	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *f = &p[pc];
		uint32_t k = f->k;

		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			cr_assert(k + 4 <= sizeof(*d) && k % 4 == 0, "load at %u", k);
			memcpy(&a, (const char *)d + k, 4);
			break;
		case BPF_LD | BPF_IMM:
			a = k;
			break;
		case BPF_LDX | BPF_IMM:
			x = k;
			break;
		case BPF_LD | BPF_MEM:
			a = mem[k % BPF_MEMWORDS];
			break;
		case BPF_LDX | BPF_MEM:
			x = mem[k % BPF_MEMWORDS];
			break;
		case BPF_ST:
			mem[k % BPF_MEMWORDS] = a;
			break;
		case BPF_STX:
			mem[k % BPF_MEMWORDS] = x;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= k;
			break;
		case BPF_ALU | BPF_OR | BPF_K:
			a |= k;
			break;
		case BPF_MISC | BPF_TAX:
			x = a;
			break;
		case BPF_MISC | BPF_TXA:
			a = x;
			break;
		case BPF_JMP | BPF_JA:
			pc += k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += a > k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & k) ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return k;
		case BPF_RET | BPF_A:
			return a;
		default:
			cr_assert_fail("BPF opcode %#x not handled by the test interpreter",
				       f->code);
		}
	}
	cr_assert_fail("the program ran off its end");
	return 0;
}

static uint32_t verdict(const struct sock_filter *p, size_t n, int nr)
{
	struct seccomp_data d;

	memset(&d, 0, sizeof(d));
	d.nr = nr;
	d.arch = AUDIT_ARCH_X86_64;
	return bpf_run(p, n, &d);
}

/* ---- live worker ---- */

TestSuite(sandbox, .init = start_default, .fini = it_teardown, .timeout = 60);

ITEST(sandbox, worker_status_shows_filter_no_new_privs_and_only_the_passthrough_caps)
{
	pid_t w[8];
	int n = workers(w, 2);

	for (int i = 0; i < n; i++) {
		cr_expect_eq(it_status_num(w[i], "Seccomp"), 2, "worker %d", (int)w[i]);
		/* its own allow list on top of the parent's deny list */
		cr_expect_eq(it_status_num(w[i], "Seccomp_filters"), 2);
		cr_expect_eq(it_status_num(w[i], "NoNewPrivs"), 1);
		cr_expect_eq(it_status_hex(w[i], "CapEff"), SBX_WORKER_CAPS, "CapEff %#llx",
			     it_status_hex(w[i], "CapEff"));
		cr_expect_eq(it_status_hex(w[i], "CapPrm"), SBX_WORKER_CAPS);
		cr_expect_eq(it_status_hex(w[i], "CapBnd"), 0);
		cr_expect_eq(it_status_hex(w[i], "CapInh"), 0);
		cr_expect_eq(it_status_hex(w[i], "CapAmb"), 0);
		cr_expect_eq(it_status_hex(w[i], "CapEff") & (1ull << CAP_DAC_READ_SEARCH), 0);
	}
}

ITEST(sandbox, parent_keeps_only_the_spawning_union_and_its_deny_list)
{
	pid_t p = it_d.hd_pid;

	cr_expect_eq(it_status_hex(p, "CapEff"), SBX_PARENT_NS_CAPS, "CapEff %#llx",
		     it_status_hex(p, "CapEff"));
	cr_expect_eq(it_status_hex(p, "CapPrm"), SBX_PARENT_NS_CAPS);
	cr_expect_eq(it_status_hex(p, "CapBnd"), SBX_PARENT_NS_CAPS, "CapBnd %#llx",
		     it_status_hex(p, "CapBnd"));
	cr_expect_eq(it_status_hex(p, "CapAmb"), 0);
	cr_expect_eq(it_status_num(p, "Seccomp"), 2);
	cr_expect_eq(it_status_num(p, "Seccomp_filters"), 1);
}

/* Device nodes and file capabilities, when the operator allows them, bring
 * back exactly CAP_MKNOD and CAP_SETFCAP, in the parent and the workers. */
static void start_priv_meta(void)
{
	static const char *const extra[] = {"--device-nodes=allow", "--xattr",
					    "--file-caps=allow", NULL};

	start_with(extra, 2);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
}

Test(sandbox_priv_meta, allowed_device_nodes_and_file_caps_keep_mknod_and_setfcap,
     .init = start_priv_meta, .fini = it_teardown, .timeout = 60)
{
	pid_t w[8];
	int n = workers(w, 2);

	for (int i = 0; i < n; i++) {
		cr_expect_eq(it_status_hex(w[i], "CapEff"), SBX_WORKER_CAPS | SBX_PRIV_META_CAPS,
			     "CapEff %#llx", it_status_hex(w[i], "CapEff"));
		cr_expect_eq(it_status_hex(w[i], "CapBnd"), 0);
	}
	cr_expect_eq(it_status_hex(it_d.hd_pid, "CapEff"), SBX_PARENT_NS_CAPS | SBX_PRIV_META_CAPS,
		     "CapEff %#llx", it_status_hex(it_d.hd_pid, "CapEff"));
	it_stop_ok();
}

ITEST(sandbox, worker_filters_equal_our_compile_of_the_policy_files)
{
	static struct sock_filter got[4096], want[4096];
	pid_t w[8];
	size_t nw;
	long ng;

	workers(w, 2);
	trace_stop(w[0]);
	ng = get_filter(w[0], 1, got, 4096);
	nw = compile_policy("worker-passthrough.policy", 0, want, 4096);
	cr_expect_eq((size_t)ng, nw, "installed %ld instructions, compiled %zu", ng, nw);
	cr_expect_eq(memcmp(got, want, nw * sizeof(*want)), 0, "worker program differs");
	/* the inherited filter is the parent's deny list */
	ng = get_filter(w[0], 0, got, 4096);
	nw = compile_policy("parent.policy", 1, want, 4096);
	cr_expect_eq((size_t)ng, nw, "installed %ld instructions, compiled %zu", ng, nw);
	cr_expect_eq(memcmp(got, want, nw * sizeof(*want)), 0, "parent program differs");
	cr_assert_eq(ptrace(PTRACE_DETACH, w[0], NULL, NULL), 0);
}

ITEST(sandbox, worker_filter_denies_the_must_deny_list)
{
	static const char *const deny[] = {
	    "execve",
	    "execveat",
	    "ptrace",
	    "mount",
	    "umount2",
	    "pivot_root",
	    "socket",
	    "connect",
	    "bind",
	    "open_by_handle_at",
	    "name_to_handle_at",
	    "bpf",
	    "init_module",
	    "finit_module",
	    "kexec_load",
	    "unshare",
	    "setns",
	    "keyctl",
	    "perf_event_open",
	    "process_vm_readv",
	    "io_uring_setup",
	    "chroot",
	};
	static struct sock_filter prog[4096];
	pid_t w[8];
	long n;

	workers(w, 2);
	trace_stop(w[1]);
	n = get_filter(w[1], 1, prog, 4096);
	cr_assert_eq(ptrace(PTRACE_DETACH, w[1], NULL, NULL), 0);
	cr_assert_gt(n, 0);
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++) {
		int nr = seccomp_syscall_resolve_name(deny[i]);

		cr_assert_geq(nr, 0, "%s", deny[i]);
		cr_expect_eq(verdict(prog, (size_t)n, nr), SECCOMP_RET_TRAP, "%s is not trapped",
			     deny[i]);
	}
	/* the interpreter and the program agree on the obvious too */
	cr_expect_eq(verdict(prog, (size_t)n, SYS_read), SECCOMP_RET_ALLOW);
	cr_expect_eq(verdict(prog, (size_t)n, SYS_clone3), SECCOMP_RET_ERRNO | ENOSYS);
}

ITEST(sandbox, worker_lives_in_its_own_mount_pid_net_ipc_and_uts_namespaces)
{
	static const char *const ns[] = {"mnt", "pid", "net", "ipc", "uts"};
	char a[128], b[128];
	pid_t w[8];
	int n = workers(w, 2);

	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++) {
			it_ns_link(w[i], ns[j], a, sizeof(a));
			it_ns_link(it_d.hd_pid, ns[j], b, sizeof(b));
			cr_expect_str_neq(a, b, "worker %d shares %s with the parent", (int)w[i],
					  ns[j]);
		}
	/* pid 1 of its own PID namespace ("NSpid: <host pid>\t1") */
	for (int i = 0; i < n; i++) {
		char v[64];

		cr_assert_eq(it_status_field(w[i], "NSpid", v, sizeof(v)), 0);
		cr_expect(strlen(v) > 2 && strcmp(v + strlen(v) - 2, "\t1") == 0, "NSpid %s", v);
	}
}

/* Namespace mode: a worker's root is an empty read-only tmpfs; it reaches
 * the share only through its descriptor of the device's one mount of it,
 * which every worker shares (so descriptors they pass each other stay on
 * one mount) and which is nodev, nosuid and noexec. */
ITEST(sandbox, worker_root_is_empty_and_every_worker_serves_one_mount_of_the_share)
{
	struct statfs sf;
	struct statvfs sv;
	char p[64];
	pid_t w[8];
	int n = workers(w, 2), mnt0 = -2;

	for (int i = 0; i < n; i++) {
		DIR *d;
		struct dirent *de;
		int entries = 0, mnt = -1, fd;

		snprintf(p, sizeof(p), "/proc/%d/root/", (int)w[i]);
		cr_assert_eq(statfs(p, &sf), 0);
		cr_expect_eq(sf.f_type, TMPFS_MAGIC, "worker %d: root is not a tmpfs", (int)w[i]);
		cr_assert_eq(statvfs(p, &sv), 0);
		cr_expect(sv.f_flag & ST_RDONLY, "worker %d: root is writable", (int)w[i]);
		cr_assert_not_null(d = opendir(p));
		while ((de = readdir(d)))
			entries += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
		closedir(d);
		cr_expect_eq(entries, 0, "worker %d: root holds %d entries", (int)w[i], entries);

		fd = it_worker_share_fd(w[i], it_share, &mnt);
		cr_assert_geq(fd, 0, "worker %d holds no descriptor of the share", (int)w[i]);
		cr_assert_eq(fstatvfs(fd, &sv), 0);
		close(fd);
		cr_expect((sv.f_flag & (ST_NODEV | ST_NOSUID | ST_NOEXEC)) ==
			      (ST_NODEV | ST_NOSUID | ST_NOEXEC),
			  "worker %d: the share is not nodev, nosuid, noexec", (int)w[i]);
		cr_expect(!(sv.f_flag & ST_RDONLY));
		cr_assert_geq(mnt, 0);
		if (mnt0 == -2)
			mnt0 = mnt;
		cr_expect_eq(mnt, mnt0, "worker %d serves mount %d, another serves %d", (int)w[i],
			     mnt, mnt0);
	}
}

/* ---- escape attempts from the guest side ---- */

static void expect_not_host_root(const struct fuse_attr *a, const char *what)
{
	struct stat root;

	cr_assert_eq(stat("/", &root), 0);
	cr_expect(a->ino != root.st_ino, "%s has the host root's inode", what);
}

ITEST(sandbox, dotdot_at_the_root_stays_at_the_share)
{
	struct fuse_entry_out e;
	struct fuse_attr_out ra;
	struct stat share;
	int r;

	cr_assert_eq(stat(it_share, &share), 0);
	cr_assert_eq(vufe_fuse_getattr(it_fe, 1, 1, &ra), 0);
	cr_expect_eq(ra.attr.ino, share.st_ino);
	memset(&e, 0, sizeof(e));
	r = vufe_fuse_lookup(it_fe, 1, 1, "..", &e);
	cr_assert_eq(r, 0, "lookup of '..' at the root: %d", r);
	cr_expect_eq(e.nodeid, 1);
	cr_expect_eq(e.attr.ino, share.st_ino, "'..' left the share");
	expect_not_host_root(&e.attr, "'..'");
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

ITEST(sandbox, names_with_a_slash_are_refused)
{
	static const char *const names[] = {"../etc", "dir/f000", "/etc", "../../../../etc/passwd"};
	struct fuse_entry_out e;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_expect_eq(vufe_fuse_lookup(it_fe, 1, 1, names[i], &e), -EINVAL, "%s", names[i]);
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

/* A symlink in the share, looked up, then a name below it: never the host's. */
static void expect_link_leads_nowhere(const char *target, const char *below)
{
	struct fuse_entry_out e, e2;
	char p[PATH_MAX];
	int r;

	snprintf(p, sizeof(p), "%s/esc", it_share);
	unlink(p);
	cr_assert_eq(symlink(target, p), 0);
	memset(&e, 0, sizeof(e));
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, 1, "esc", &e), 0, "lookup of the link to %s",
		     target);
	cr_expect(S_ISLNK(e.attr.mode), "the link to %s was followed", target);
	r = vufe_fuse_lookup(it_fe, 1, e.nodeid, below, &e2);
	cr_expect_eq(r, -ENOTDIR, "%s below the link to %s: %d", below, target, r);
	r = vufe_fuse_opendir(it_fe, 1, e.nodeid, &(uint64_t){0});
	cr_expect_eq(r, -ENOTDIR, "OPENDIR of the link to %s: %d", target, r);
	vufe_fuse_forget(it_fe, 1, e.nodeid, 1);
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

ITEST(sandbox, symlinks_out_of_the_share_and_magic_links_lead_nowhere)
{
	expect_link_leads_nowhere("/", "etc");
	expect_link_leads_nowhere("/etc", "passwd");
	expect_link_leads_nowhere("/proc/self/root", "etc");
	expect_link_leads_nowhere("/proc/self/fd/3", "etc");
	expect_link_leads_nowhere("/proc/self/cwd", "etc");
	expect_link_leads_nowhere("../../../../", "etc");
}

/* ---- --sandbox=chroot ---- */

TestSuite(sandbox_chroot, .init = start_chroot, .fini = it_teardown, .timeout = 60);

ITEST(sandbox_chroot, chroot_roots_the_worker_in_the_share_without_new_namespaces)
{
	static const char *const ns[] = {"mnt", "pid", "net"};
	struct stat share, wroot;
	char a[128], b[128], p[64];
	pid_t w[8];
	int n = workers(w, 2);

	cr_assert_eq(stat(it_share, &share), 0);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/proc/%d/root/", (int)w[i]);
		cr_assert_eq(stat(p, &wroot), 0);
		cr_expect(wroot.st_dev == share.st_dev && wroot.st_ino == share.st_ino);
		for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++) {
			it_ns_link(w[i], ns[j], a, sizeof(a));
			it_ns_link(it_d.hd_pid, ns[j], b, sizeof(b));
			cr_expect_str_eq(a, b, "chroot mode created a %s namespace", ns[j]);
		}
		cr_expect_eq(it_status_num(w[i], "Seccomp"), 2);
		cr_expect_eq(it_status_hex(w[i], "CapEff"), SBX_WORKER_CAPS);
		cr_expect_eq(it_status_hex(w[i], "CapBnd"), 0);
	}
	cr_expect_eq(it_status_hex(it_d.hd_pid, "CapBnd"), SBX_PARENT_CHROOT_CAPS);
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

/* A parent that lacks CAP_SYS_CHROOT (dropped from our bounding set, which it
 * inherits) cannot give it: its worker's chroot fails, and the worker says so. */
static void start_chroot_without_cap(void)
{
	static const char *const extra[] = {"--sandbox=chroot", NULL};

	cr_assert_eq(prctl(PR_CAPBSET_DROP, CAP_SYS_CHROOT, 0, 0, 0), 0);
	start_with(extra, 2);
}

TestSuite(sandbox_refused, .init = start_chroot_without_cap, .fini = it_teardown, .timeout = 60);

ITEST(sandbox_refused, worker_that_cannot_chroot_refuses_to_serve_and_the_parent_says_why)
{
	int r;

	/* both request queues' workers refuse; INIT on q1 finds no one */
	it_expect_worker_death(0, "exited with status 1");
	it_expect_worker_death(1, "exited with status 1");
	r = it_up_init(it_fe);
	cr_expect_eq(r, VUFE_ENOREPLY, "served without a sandbox (%d)", r);
	hx_wait_log(&it_d, "refused to serve: chroot: ", 5000);
	cr_expect(hx_log_contains(&it_d, "worker q0 refused to serve: chroot: Operation not "
					 "permitted"));
	cr_expect(hx_alive(&it_d), "the parent died with its worker");
}

/* ---- policies at start-up ---- */

Test(policy_cli, check_policy_accepts_the_shipped_files_and_prints_rule_counts)
{
	char out[4096];
	char *const argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", (char *)"--check-policy",
			      NULL};

	cr_assert_eq(run_capture(argv, out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "worker-passthrough") && strstr(out, "rules"), "%s", out);
	cr_expect(strstr(out, "parent"), "%s", out);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	cr_assert(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
}

static void broken_policy_dir(char *dir, size_t len)
{
	cr_assert_eq(hx_mkdtemp(dir, len, "policy"), 0);
	write_file(dir, "worker-passthrough.policy", "read: 1\n# fine so far\nno_such_call: 1\n");
	write_file(dir, "parent.policy", "kexec_load: kill\n");
}

Test(policy_cli, check_policy_on_a_broken_file_exits_1_naming_file_and_line)
{
	char dir[256], arg[300], out[4096];
	char *const argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", (char *)"--check-policy",
			      arg, NULL};

	broken_policy_dir(dir, sizeof(dir));
	snprintf(arg, sizeof(arg), "--policy-dir=%s", dir);
	cr_expect_eq(run_capture(argv, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "worker-passthrough.policy:3:"), "%s", out);
	hx_rmtree(dir);
}

Test(policy_cli, startup_with_a_broken_policy_stops_with_file_and_line)
{
	char dir[256], share[256], sock[300], parg[300], sarg[300], out[4096];
	char *const argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", sarg, parg, sock, NULL};
	struct stat st;

	broken_policy_dir(dir, sizeof(dir));
	cr_assert_eq(hx_mkdtemp(share, sizeof(share), "share"), 0);
	snprintf(parg, sizeof(parg), "--policy-dir=%s", dir);
	snprintf(sarg, sizeof(sarg), "--shared-dir=%s", share);
	snprintf(sock, sizeof(sock), "--socket-path=%s/s", dir);
	cr_expect_eq(run_capture(argv, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "worker-passthrough.policy:3:"), "%s", out);
	snprintf(sock, sizeof(sock), "%s/s", dir);
	cr_expect_neq(stat(sock, &st), 0, "a socket was created before the policy check");
	hx_rmtree(dir);
	hx_rmtree(share);
}

/* ---- a forbidden call by the real worker (test hooks) ---- */

#ifdef BH_TEST_HOOKS
static int wait_log(const char *s, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (hx_log_contains(&it_d, s))
			return 1;
		usleep(20000);
	}
	return hx_log_contains(&it_d, s);
}

/* The hook's first worker dies: a new connection must be served in full. */
static void expect_new_connection_served(void)
{
	struct vufe_opts o;

	vufe_free(it_fe);
	vufe_opts_default(&o);
	it_fe = it_connect(&o);
	cr_assert_eq(it_up_init(it_fe), 0, "the next front end was not served");
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

static void start_hook_kill(void)
{
	static const char *const extra[] = {"--test-forbidden-syscall", NULL};

	start_with(extra, 2);
}

static void start_hook_trap(void)
{
	static const char *const extra[] = {"--test-forbidden-syscall", "--seccomp=trap", NULL};

	start_with(extra, 2);
}

static void start_hook_log(void)
{
	static const char *const extra[] = {"--test-forbidden-syscall", "--seccomp=log", NULL};

	start_with(extra, 2);
}

TestSuite(hook_kill, .init = start_hook_kill, .fini = it_teardown, .timeout = 60);
TestSuite(hook_trap, .init = start_hook_trap, .fini = it_teardown, .timeout = 60);
TestSuite(hook_log, .init = start_hook_log, .fini = it_teardown, .timeout = 60);

ITEST(hook_kill, forbidden_call_is_logged_by_name_with_the_policy_file_and_serving_goes_on)
{
	int r;

	it_expect_worker_death(0, IT_FORBIDDEN "umount2 (166)");
	it_expect_worker_death(0, IT_KILLED);
	/* the hook is q0's (hiprio); q1 serves INIT */
	r = it_up_init(it_fe);
	cr_expect_eq(r, 0, "INIT on q1 failed (%d)", r);
	cr_assert(wait_log("made a forbidden system call: umount2 (166); allow it in ", 5000));
	cr_expect(hx_log_contains(&it_d, "worker-passthrough.policy if it is legitimate"));
	cr_expect(wait_log("was killed by signal 9", 5000));
	cr_expect(hx_alive(&it_d));
	expect_new_connection_served();
}

ITEST(hook_trap, trap_reports_the_call_then_the_worker_dies_by_sigsys)
{
	int r;

	it_expect_worker_death(0, IT_FORBIDDEN "umount2 (166)");
	it_expect_worker_death(0, IT_SIGSYS);
	r = it_up_init(it_fe);
	cr_expect_eq(r, 0, "INIT on q1 failed (%d)", r);
	cr_assert(wait_log("made a forbidden system call: umount2 (166)", 5000));
	cr_expect(wait_log("was killed by signal 31", 5000));
	expect_new_connection_served();
}

ITEST(hook_log, log_mode_prints_a_policy_line_and_the_worker_keeps_running)
{
	pid_t w[8];

	/* the call is let through; the line is the one the test wants */
	it_expect_worker_death(0, "would deny: `umount2: 1`");
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed in log mode");
	cr_expect(wait_log("worker-passthrough.policy would deny: `umount2: 1`", 5000));
	cr_expect(!hx_log_contains(&it_d, "made a forbidden system call"));
	workers(w, 2);
	cr_expect_eq(it_status_num(w[0], "Seccomp"), 2);
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0);
	cr_expect_eq(hx_children(it_d.hd_pid, w, 8), 2, "a worker died in log mode");
}
#endif
