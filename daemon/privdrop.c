/*
 * privdrop.c - the parent's least privilege and the seccomp policies: both
 * policy files compiled once at start-up (a bad file stops start-up with
 * file:line), the worker's program exported into a sealed memfd every
 * worker loads, and, right after start-up, the parent's capabilities cut
 * to what spawning sandboxed workers needs and parent.policy loaded as a
 * deny list (inherited by every worker).
 * Runs in: the parent, privileged until priv_drop. The policy files are the
 * operator's, trusted to mean what they say; libseccomp reports their
 * errors through common/policy.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cap-ng.h>
#include <seccomp.h>

#include "backends.h"
#include "bulkheadd.h"
#include "log.h"
#include "policy.h"

int priv_policy_dir(const struct parent_conf *conf, int from_build_tree, char *buf, size_t len)
{
	if (conf->pc_policy_dir)
		return pol_resolve_dir(conf->pc_policy_dir, buf, len);
	return pol_default_dir(from_build_tree, buf, len);
}

/* The worker's default action: TRAP so its SIGSYS handler can name the
 * call (kill and trap differ in how the worker then dies), NOTIFY so the
 * parent can log and let it through. */
static uint32_t priv_worker_action(uint32_t mode)
{
	return mode == IPC_SECCOMP_LOG ? SCMP_ACT_NOTIFY : SCMP_ACT_TRAP;
}

/* Export a compiled filter into a sealed memfd, shared read-only by every
 * worker: a compromised worker cannot change what the next one loads. */
static int priv_export(scmp_filter_ctx ctx, int *fdp, uint32_t *ninsns)
{
	struct stat st;
	int fd, r;

	if ((fd = memfd_create("bulkhead-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
		return -errno;
	if ((r = seccomp_export_bpf(ctx, fd)) < 0)
		goto fail;
	if (fstat(fd, &st) < 0 || st.st_size == 0 || st.st_size % 8 != 0 || st.st_size / 8 > 4096) {
		r = -EINVAL;
		goto fail;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto fail;
	}
	*fdp = fd;
	*ninsns = (uint32_t)(st.st_size / 8);
	return 0;
fail:
	close(fd);
	return r;
}

/* The worker's half of priv_compile: its policy file read, compiled and
 * exported into env's fields (pe_policy_dir, pe_worker_policy,
 * pe_worker_set, pe_prog_fd, pe_prog_ninsns) by env's pe_conf. 0, or
 * -errno logged with the file and line. */
static int priv_compile_worker(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	char err[600], file[64];
	scmp_filter_ctx ctx = NULL;
	unsigned nw = 0;
	int r;

	env->pe_prog_fd = -1;
	env->pe_worker_set = NULL;
	if (c->pc_seccomp == IPC_SECCOMP_NONE)
		return 0;
	if (priv_policy_dir(c, env->pe_from_build_tree, env->pe_policy_dir,
			    sizeof(env->pe_policy_dir)) < 0 ||
	    pol_worker_file(be_desc_find(c->pc_backend)->bd_name, file, sizeof(file)) < 0) {
		log_warnx("policy directory name too long");
		return -ENAMETOOLONG;
	}
	snprintf(env->pe_worker_policy, sizeof(env->pe_worker_policy), "%s/%s", env->pe_policy_dir,
		 file);
	if (!(env->pe_worker_set = pol_load(env->pe_policy_dir, file, err, sizeof(err)))) {
		log_warnx("%s", err);
		return -EINVAL;
	}
	r = pol_compile(env->pe_worker_set, priv_worker_action(c->pc_seccomp), &ctx, &nw, err,
			sizeof(err));
	if (r < 0) {
		log_warnx("%s", err);
		return r;
	}
	r = priv_export(ctx, &env->pe_prog_fd, &env->pe_prog_ninsns);
	seccomp_release(ctx);
	if (r < 0) {
		log_warnx("cannot export the worker's seccomp program: %s", strerror(-r));
		return r;
	}
	log_debug("seccomp policy %s: %u rules (%u instructions)", env->pe_worker_policy, nw,
		  env->pe_prog_ninsns);
	return 0;
}

/* parent.policy from env's policy directory, or NULL (logged). */
static struct pol_set *priv_load_parent(const struct parent_env *env)
{
	struct pol_set *set;
	char err[600];

	if (!(set = pol_load(env->pe_policy_dir, "parent.policy", err, sizeof(err))))
		log_warnx("%s", err);
	return set;
}

int priv_compile(struct parent_env *env)
{
	char err[600];
	unsigned np = 0;
	int r;

	if ((r = priv_compile_worker(env)) < 0 || env->pe_conf->pc_seccomp == IPC_SECCOMP_NONE)
		return r;
	if (!(env->pe_parent_set = priv_load_parent(env)))
		return -EINVAL;
	/* TRAP, not KILL_PROCESS: a worker that trips the parent's list still
	 * reports the call through its SIGSYS handler. */
	r = pol_compile_denylist(env->pe_parent_set, SCMP_ACT_TRAP,
				 (scmp_filter_ctx *)&env->pe_parent_filter, &np, err, sizeof(err));
	if (r < 0) {
		log_warnx("%s", err);
		return r;
	}
	log_debug("seccomp policies from %s: parent %u rules", env->pe_policy_dir, np);
	return 0;
}

int priv_recompile(struct parent_env *next)
{
	struct pol_set *parent;
	int r;

	if ((r = priv_compile_worker(next)) < 0 || next->pe_conf->pc_seccomp == IPC_SECCOMP_NONE)
		return r;
	/* loaded on us at start-up and inherited by every worker since: only
	 * checked here, in force at the next start */
	if (!(parent = priv_load_parent(next)))
		return -EINVAL;
	pol_free(parent);
	return 0;
}

const char *priv_policy_for(const struct parent_env *env, int nr)
{
	static char buf[4200];
	enum pol_action act;
	const char *name;
	int e;

	name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	if (name && env->pe_parent_set && pol_lookup(env->pe_parent_set, name, &act, &e) == 0 &&
	    act == POL_KILL) {
		snprintf(buf, sizeof(buf), "%s/parent.policy (which denies it to every process)",
			 env->pe_policy_dir);
		free((void *)name);
		return buf;
	}
	free((void *)name);
	return env->pe_worker_policy;
}

/* The parent's own forbidden call: say so on stderr and die by SIGSYS. */
static void priv_on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	static const char msg[] = "bulkheadd: forbidden system call ";
	char num[16];
	int i = (int)sizeof(num);
	unsigned v = (unsigned)si->si_syscall;

	num[--i] = '\n';
	do
		num[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)!write(STDERR_FILENO, num + i, sizeof(num) - (size_t)i);
	/* SA_RESETHAND: the re-raised SIGSYS takes the default action. */
	raise(SIGSYS);
}

/*
 * Spawning needs SYS_ADMIN (namespaces; the worker mounts and pivots) or
 * SYS_CHROOT, SETPCAP (workers clear their bounding sets), and the
 * workers' own set, less what the operator's choices leave unused (device
 * nodes, file capabilities): a worker cannot regain what we gave up. A
 * capability we do not hold (an unprivileged parent) is simply not kept.
 */
static int priv_drop_caps(const struct parent_conf *c)
{
	const struct be_desc *be = be_desc_find(c->pc_backend);
	int keep[16], n = 0, r;
	char list[400] = "";

	capng_get_caps_process();
	/* what the back end's workers keep: a worker can keep only what its
	 * parent holds */
	for (size_t i = 0; i < be->bd_nkeep; i++) {
		if ((be->bd_keep[i] == CAP_MKNOD && !c->pc_devices) ||
		    (be->bd_keep[i] == CAP_SETFCAP && (!c->pc_file_caps || !c->pc_xattr)))
			continue;
		keep[n++] = (int)be->bd_keep[i];
	}
	keep[n++] = CAP_SETPCAP;
	if (c->pc_sandbox == IPC_SBX_NAMESPACE)
		keep[n++] = CAP_SYS_ADMIN;
	else if (c->pc_sandbox == IPC_SBX_CHROOT)
		keep[n++] = CAP_SYS_CHROOT;
	if (!capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP)) {
		log_debug("no CAP_SETPCAP: capabilities left as they are");
		return 0;
	}
	{
		int held[16], nh = 0;

		for (int i = 0; i < n; i++)
			if (capng_have_capability(CAPNG_PERMITTED, (unsigned)keep[i]))
				held[nh++] = keep[i];
		capng_clear(CAPNG_SELECT_ALL);
		for (int i = 0; i < nh; i++) {
			capng_update(CAPNG_ADD,
				     CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
				     (unsigned)held[i]);
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? " " : "", capng_capability_to_name((unsigned)held[i]));
		}
	}
	if ((r = capng_apply(CAPNG_SELECT_ALL)) < 0) {
		log_warnx("cannot drop capabilities (libcap-ng error %d)", r);
		return -EPERM;
	}
	log_debug("capabilities kept: %s", list);
	return 0;
}

int priv_drop(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	struct sigaction sa;
	int r;

	if ((r = priv_drop_caps(c)) < 0)
		return r;
	if (!env->pe_parent_filter)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = priv_on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	r = seccomp_load((scmp_filter_ctx)env->pe_parent_filter);
	seccomp_release((scmp_filter_ctx)env->pe_parent_filter);
	env->pe_parent_filter = NULL;
	if (r < 0) {
		log_warnx("cannot load %s/parent.policy: %s", env->pe_policy_dir, strerror(-r));
		return r;
	}
	log_debug("%s/parent.policy loaded", env->pe_policy_dir);
	return 0;
}
