/* cgroups as the meter sees them: where cgroup v2 is mounted (the whole of
 * /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host), cgroup ids,
 * the kernel's own CPU and memory figures, and where libvirt put a domain.
 *
 * libvirt places a QEMU process in one of two layouts, both with `emulator`,
 * `vcpuN` and `iothreadN` children (threaded cgroups on v2):
 *   systemd hosts:  machine.slice/machine-qemu\x2dN\x2dNAME.scope/
 *   elsewhere:      machine/qemu-N-NAME.libvirt-qemu/
 * On a hybrid host libvirt builds that tree in the v2 hierarchy too (it has
 * the v2-only controllers there); memory is then read from the v1 memory
 * controller's copy of the tree. */
#ifndef TALLY_METER_CGROUP_H
#define TALLY_METER_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CG_PATH_MAX 256

/* Mount point of the cgroup-v2 hierarchy. TALLY_E_NOTFOUND when none. */
int cg2_root(char out[CG_PATH_MAX]);
/* Mount point of a v1 controller (e.g. "memory"). TALLY_E_NOTFOUND when none. */
int cg1_root(const char *controller, char out[CG_PATH_MAX]);

/* true when dir is a directory of a cgroup-v2 file system. */
bool cg2_is_cgroup(const char *dir);
/* The cgroup-v2 id of a directory: what the kernel's cgroup_id() and the
 * eBPF programs see. TALLY_E_NOTFOUND when the directory is gone. */
int cg_id(const char *dir, uint64_t *id);
/* cpu.stat usage_usec of a v2 cgroup (includes its descendants). */
int cg_usage_usec(const char *dir, uint64_t *usec);

/* Memory in use and its high-water mark: memory.current/memory.peak on v2,
 * memory.usage_in_bytes/memory.max_usage_in_bytes on v1. A v2 kernel older
 * than 5.19 has no memory.peak; peak is then the current figure. */
int cg_memory(const char *dir, uint64_t *current, uint64_t *peak);

/* The path of pid's cgroup relative to its hierarchy's root, from
 * /proc/PID/cgroup: controller NULL for v2 ("0::"), else a v1 controller. */
int cg_pid_path(pid_t pid, const char *controller, char out[CG_PATH_MAX]);

/* Length of the prefix of a cgroup path that is a libvirt VM's own cgroup
 * (ending in the ".libvirt-qemu" or "machine-qemu...scope" segment), or 0
 * when the path lies in neither layout. */
size_t cg_libvirt_vm_prefix(const char *path);

/* What a vCPU cgroup is called: "vcpuN". */
bool cg_is_vcpu_name(const char *basename);

/* Calls fn for dir and then each directory below it (pre-order); stops at
 * and returns the first non-zero value fn returns. */
int cg_walk(const char *dir, int (*fn)(const char *path, void *arg), void *arg);

/* The cgroups of a running libvirt domain's QEMU process. */
struct cg_domain {
	pid_t pid;                  /* QEMU */
	char v2_dir[CG_PATH_MAX];   /* absolute: the VM's cgroup-v2 directory */
	char mem_dir[CG_PATH_MAX];  /* absolute: where its memory is charged */
};

/* Resolve a domain's cgroups from its QEMU pid (libvirt's pid file
 * /run/libvirt/qemu/NAME.pid). why[WHY_MAX] says what was missing. */
int cg_domain_resolve(const char *domain_name, struct cg_domain *out,
		      char *why);

#endif
