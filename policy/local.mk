# policy/: seccomp policy files, one per worker kind plus the parent's deny
# list, per architecture. Operators edit the installed copies.
policybasedir = $(sysconfdir)/bulkhead/policy
policydir = $(policybasedir)/x86_64
dist_policy_DATA = \
	policy/x86_64/common.policy \
	policy/x86_64/parent.policy \
	policy/x86_64/files.policy \
	policy/x86_64/worker-passthrough.policy \
	policy/x86_64/worker-memory.policy \
	policy/x86_64/worker-s3.policy

# BH_POLICY_DIR: the installed base (pol_default_dir adds the arch);
# BH_SRC_POLICY_DIR: the source tree's, for binaries run from the build tree.
AM_CPPFLAGS += -DBH_POLICY_DIR='"$(policybasedir)"' \
	-DBH_SRC_POLICY_DIR='"$(abs_top_srcdir)/policy"'
