/*
 * s3_parent.c - what the parent holds for the S3 back end: the staging
 * directory the workers write random writes into, the CA bundle for an
 * https endpoint, and the credentials; and the two messages an S3 worker
 * gets after CONFIG (S3_CONFIG, S3_CREDS; common/ipc.h).
 * Runs in: the parent, at start-up before its capabilities go (the clone
 * of the staging directory needs CAP_SYS_ADMIN; a child in a user
 * namespace makes it when the parent is unprivileged), and on SIGHUP.
 *
 * The secrets are read here and leave only over the workers' channels:
 * never logged, never on a command line or in a worker's environment
 * (workers are executed with an empty one), wiped when replaced.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkheadd.h"
#include "log.h"
#include "s3_creds.h"

/* What an https endpoint is checked against when ca_file is not given. */
#define S3_CA_SYSTEM "/etc/ssl/certs/ca-certificates.crt"
#define S3_CA_MAX    (16u << 20) /* the system's bundle is about 200 KiB */

_Static_assert(sizeof(((struct s3_creds *)0)->access_key) ==
		       sizeof(((struct ipc_s3_creds *)0)->cr_access_key) &&
		   sizeof(((struct s3_creds *)0)->secret_key) ==
		       sizeof(((struct ipc_s3_creds *)0)->cr_secret_key) &&
		   sizeof(((struct s3_creds *)0)->session_token) ==
		       sizeof(((struct ipc_s3_creds *)0)->cr_session_token),
	       "the credentials fit S3_CREDS as they are");

/*
 * With --sandbox=namespace the workers get the staging directory as the
 * memory back end's workers get its file system: as the device's mount,
 * made here. A detached clone (open_tree: in no mount tree, so ".." at its
 * root stays there; not recursive: what is mounted below the directory is
 * not part of it), nodev, nosuid, noexec, and read-only with --readonly,
 * which is what the worker checks of a mount it is given
 * (worker/sandbox.c).
 */
static int s3_staging_clone(const struct parent_env *env, const char **step)
{
	struct mount_attr ma = {.attr_set =
				    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC};
	int t, err;

	if (env->pe_conf->pc_readonly)
		ma.attr_set |= MOUNT_ATTR_RDONLY;
	*step = "open_tree";
	t = open_tree(AT_FDCWD, conf_be_str(env->pe_conf, "staging_dir"),
		      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t < 0)
		return -errno;
	*step = "mount_setattr nodev, nosuid, noexec";
	if (mount_setattr(t, "", AT_EMPTY_PATH, &ma, sizeof(ma)) < 0) {
		err = -errno;
		close(t);
		return err;
	}
	return t;
}

/* The staging directory into env->pe_root_fd (CONFIG's first descriptor):
 * the clone above, or in the other modes the directory itself. It must be
 * able to hold unnamed files, which is all the workers make there. */
static int s3_staging(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	const char *dir = conf_be_str(c, "staging_dir"), *step = "open";
	struct stat st;
	int fd, f;

	if (c->pc_sandbox != IPC_SBX_NAMESPACE) {
		if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			fd = -errno;
	} else if (env->pe_unpriv) {
		fd = uns_make_fd(env, s3_staging_clone);
		step = "in a user namespace";
	} else {
		fd = s3_staging_clone(env, &step);
	}
	if (fd < 0) {
		log_warnx("cannot open the staging directory %s (staging_dir in [s3]; %s): %s", dir,
			  step, strerror(-fd));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_warnx("the staging directory %s (staging_dir in [s3]) is not a directory", dir);
		close(fd);
		return -1;
	}
	if (!c->pc_readonly) {
		if ((f = openat(fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0) {
			log_warn("the staging directory %s (staging_dir in [s3]) cannot hold "
				 "unnamed files (O_TMPFILE)",
				 dir);
			close(fd);
			return -1;
		}
		close(f);
	}
	env->pe_root_fd = fd;
	return 0;
}

/* The CA bundle an https endpoint is checked against, opened once for
 * every worker; an http endpoint has none. */
static int s3_ca(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	const char *ca = conf_be_str(c, "ca_file"), *path = ca ? ca : S3_CA_SYSTEM;
	struct stat st;
	int fd;

	if (strncmp(conf_be_str(c, "endpoint"), "https://", 8) != 0) {
		if (ca)
			log_warnx("ca_file %s in [s3] is not used: the endpoint is http://, "
				  "without TLS",
				  ca);
		return 0;
	}
	/* O_NONBLOCK: a FIFO there must not hang start-up */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0) {
		log_warn("cannot open the CA bundle %s (%s)", path,
			 ca ? "ca_file in [s3]" : "the system's; ca_file in [s3] names another");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    st.st_size > S3_CA_MAX) {
		log_warnx("the CA bundle %s is not a regular file of 1 byte to %u MiB", path,
			  S3_CA_MAX >> 20);
		close(fd);
		return -1;
	}
	env->pe_ca_fd = fd;
	return 0;
}

int s3_parent_init(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	char src[4200], err[600];
	struct s3_creds *cr;
	int r;

	if (!(cr = calloc(1, sizeof(*cr)))) {
		log_warnx("out of memory for the S3 credentials");
		return -1;
	}
	r = s3_creds_get(conf_be_str(c, "credentials_file"), conf_be_str(c, "profile"), cr, src,
			 sizeof(src), err, sizeof(err));
	/* whether or not they were used, and before any child is made */
	s3_creds_env_wipe();
	if (r < 0) {
		log_warnx("%s", err);
		free(cr);
		return -1;
	}
	env->pe_s3_creds = cr;
	log_info("S3 credentials from %s", src);
	if (s3_staging(env) < 0 || s3_ca(env) < 0) {
		s3_parent_free(env);
		return -1;
	}
	return 0;
}

int s3_parent_reload(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	const char *path = conf_be_str(c, "credentials_file");
	char err[600];
	struct s3_creds *fresh;

	if (!path) {
		log_info("SIGHUP: the S3 credentials came from the environment, which is read at "
			 "start-up only; keeping them");
		return -1;
	}
	if (!(fresh = calloc(1, sizeof(*fresh)))) {
		log_warnx("SIGHUP: out of memory; keeping the S3 credentials read before");
		return -1;
	}
	if (s3_creds_load(path, conf_be_str(c, "profile"), fresh, err, sizeof(err)) < 0) {
		log_warnx("SIGHUP: %s; keeping the S3 credentials read before", err);
		s3_creds_wipe(fresh);
		free(fresh);
		return -1;
	}
	s3_parent_free(env);
	env->pe_s3_creds = fresh;
	log_info("SIGHUP: S3 credentials read again from %s, profile [%s]", path,
		 conf_be_str(c, "profile"));
	return 0;
}

void s3_parent_free(struct parent_env *env)
{
	if (env->pe_s3_creds) {
		s3_creds_wipe(env->pe_s3_creds);
		free(env->pe_s3_creds);
		env->pe_s3_creds = NULL;
	}
}

void s3_parent_config(const struct parent_env *env, struct ipc_s3_config *sc)
{
	const struct parent_conf *c = env->pe_conf;

	/* The lengths were checked with the keys (common/backends.c). */
	memset(sc, 0, sizeof(*sc));
	snprintf(sc->sc_endpoint, sizeof(sc->sc_endpoint), "%s", conf_be_str(c, "endpoint"));
	snprintf(sc->sc_bucket, sizeof(sc->sc_bucket), "%s", conf_be_str(c, "bucket"));
	snprintf(sc->sc_prefix, sizeof(sc->sc_prefix), "%s", conf_be_str(c, "prefix"));
	snprintf(sc->sc_region, sizeof(sc->sc_region), "%s", conf_be_str(c, "region"));
	sc->sc_virtual = conf_be_num(c, "addressing") == 1; /* path, virtual */
	sc->sc_timeout_ms = (uint32_t)conf_be_num(c, "timeout") * 1000;
	sc->sc_attempts = (uint32_t)conf_be_num(c, "attempts");
	sc->sc_concurrency = (uint32_t)conf_be_num(c, "concurrency");
	sc->sc_attr_timeout_ms = (uint32_t)conf_be_num(c, "attr_timeout") * 1000;
	sc->sc_part_size = conf_be_num(c, "part_size");
	sc->sc_cache_size = conf_be_num(c, "cache_size");
	sc->sc_readahead = conf_be_num(c, "readahead");
	sc->sc_staging_limit = conf_be_num(c, "staging_limit");
	sc->sc_copy_threshold = conf_be_num(c, "copy_threshold");
}

void s3_parent_creds(const struct parent_env *env, struct ipc_s3_creds *cr)
{
	const struct s3_creds *k = env->pe_s3_creds;

	memcpy(cr->cr_access_key, k->access_key, sizeof(cr->cr_access_key));
	memcpy(cr->cr_secret_key, k->secret_key, sizeof(cr->cr_secret_key));
	memcpy(cr->cr_session_token, k->session_token, sizeof(cr->cr_session_token));
}
