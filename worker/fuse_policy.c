/*
 * fuse_policy.c - the operator's policy for privileged metadata, applied to
 * decoded requests before any back end sees them: device nodes
 * (--device-nodes), setuid and setgid bits on files (--setid) and file
 * capabilities (--file-caps). A guest that claims uid 0 is root only in
 * its own kernel; what it creates lands on the host, where a setuid-root
 * binary, a device node or a file capability is a privilege for whoever
 * can reach the share there.
 * Runs in: the worker (sandboxed), on the loop thread. The request is a
 * private copy already checked by the decoder; node types come from the
 * node table (a node's type never changes).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fuse_dispatch.h"
#include "log.h"
#include "node_table.h"

#define FUSE_SETID_BITS (S_ISUID | S_ISGID)

/*
 * Setuid and setgid bits on anything but a directory. On a directory
 * setgid only passes the group on to new entries and setuid means nothing
 * to Linux: both are left alone. 0 to go on (bits stripped from *mode in
 * strip mode), or -EPERM.
 */
static int fuse_policy_setid(const struct fuse_sess *s, mode_t type, uint32_t *mode)
{
	if (S_ISDIR(type) || !(*mode & FUSE_SETID_BITS) || (s->fs_policy & FUSE_POL_SETID_ALLOW))
		return 0;
	if (s->fs_policy & FUSE_POL_SETID_STRIP) {
		*mode &= ~(uint32_t)FUSE_SETID_BITS;
		return 0;
	}
	return -EPERM;
}

/* The whiteout (character device 0:0) has no driver behind it and needs no
 * CAP_MKNOD: overlayfs in the guest makes them, so it is never refused. */
static bool fuse_policy_is_whiteout(uint32_t mode, uint32_t rdev)
{
	return S_ISCHR(mode) && rdev == 0;
}

static const char *fuse_policy_what(uint32_t opcode)
{
	const struct fuse_op_info *oi = fuse_op_lookup(opcode);

	return oi ? oi->oi_name : "?";
}

int fuse_policy_check(const struct fuse_sess *s, struct fuse_in *in)
{
	struct nt_node n;
	uint32_t mode;
	int err = 0;

	switch (in->h.opcode) {
	case FUSE_MKNOD:
		mode = in->a.mknod.mode;
		if ((S_ISCHR(mode) || S_ISBLK(mode)) && !(s->fs_policy & FUSE_POL_DEVICES) &&
		    !fuse_policy_is_whiteout(mode, in->a.mknod.rdev)) {
			log_debug("MKNOD %s: device %u:%u refused (--device-nodes=refuse)",
				  in->name, major(in->a.mknod.rdev), minor(in->a.mknod.rdev));
			return -EPERM;
		}
		err = fuse_policy_setid(s, mode & S_IFMT, &in->a.mknod.mode);
		break;
	case FUSE_CREATE:
	case FUSE_TMPFILE:
		err = fuse_policy_setid(s, S_IFREG, &in->a.create.mode);
		break;
	case FUSE_SETATTR:
		if (!(in->a.setattr.valid & FATTR_MODE))
			return 0;
		/* A stale id is the back end's to answer (ESTALE). */
		if (nt_node_get(s->fs_nt, in->h.nodeid, &n) < 0)
			return 0;
		err = fuse_policy_setid(s, n.n_mode & S_IFMT, &in->a.setattr.mode);
		break;
	default:
		return 0;
	}
	if (err < 0)
		log_debug("%s node %llu: setuid/setgid mode %o refused (--setid=refuse)",
			  fuse_policy_what(in->h.opcode), (unsigned long long)in->h.nodeid,
			  (unsigned)(in->h.opcode == FUSE_SETATTR ? in->a.setattr.mode
				     : in->h.opcode == FUSE_MKNOD ? in->a.mknod.mode
								  : in->a.create.mode) &
			      07777);
	return err;
}

int fuse_policy_xattr(const struct fuse_sess *s, const struct fuse_in *in)
{
	if (in->h.opcode != FUSE_SETXATTR || (s->fs_policy & FUSE_POL_FILE_CAPS) ||
	    strcmp(in->name, "security.capability") != 0)
		return 0;
	log_debug("SETXATTR security.capability on node %llu refused (--file-caps=refuse)",
		  (unsigned long long)in->h.nodeid);
	return -EPERM;
}
