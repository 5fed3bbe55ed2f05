/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tallymeter user-space ABI: the ioctls of /dev/tallymeter.
 *
 * The kernel module and tallyd both include this file, so it uses only the
 * fixed-width types of <linux/types.h>. Every structure has the same layout
 * on 32- and 64-bit user space: padding is explicit, pointers travel as
 * __u64, and every reserved or padding field must be zero on input (the
 * module answers -EINVAL otherwise), so later versions can give them a
 * meaning without breaking old callers.
 *
 * Errors: an unknown command (including a known number with another size)
 * is -ENOTTY, a bad user pointer -EFAULT, a malformed argument -EINVAL, a
 * BDF the module does not track -ENODEV.
 */
#ifndef TALLYMETER_ABI_H
#define TALLYMETER_ABI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TALLYMETER_DEVICE_PATH	"/dev/tallymeter"
#define TALLYMETER_ABI_VERSION	1

#define TALLYMETER_LEASE_ID_LEN	32	/* a tally lease id (SHA-256) */
#define TALLYMETER_DRIVER_LEN	32	/* NUL-terminated, truncated */

/* PCI address of a device. devfn is (slot << 3) | function. */
struct tallymeter_bdf {
	__u32 domain;		/* above 0xffff behind Intel VMD */
	__u8 bus;
	__u8 devfn;
	__u16 pad;		/* must be zero */
};

/* struct tallymeter_dev.flags */
#define TALLYMETER_DEV_VFIO	0x1U	/* bound to vfio-pci now */
#define TALLYMETER_DEV_LEASED	0x2U	/* a lease id is attached */
#define TALLYMETER_DEV_GONE	0x4U	/* removed from the bus */

/*
 * One tracked device. All times are CLOCK_BOOTTIME nanoseconds: monotonic,
 * and counting time spent in suspend, during which an assigned GPU stays
 * assigned. Counters start at zero when the module loads.
 */
struct tallymeter_dev {
	struct tallymeter_bdf bdf;
	__u32 class_code;	/* 24-bit PCI class, e.g. 0x030000 */
	__u16 vendor;
	__u16 device;
	__u32 flags;		/* TALLYMETER_DEV_* */
	__u32 pad;
	__u64 assigned_ns;	/* total time bound to vfio-pci, up to now_ns */
	__u64 bound_since_ns;	/* start of the current assignment, else 0 */
	__u64 lease_ns;		/* assigned time since the lease was attached */
	__u64 lease_since_ns;	/* when the lease was attached, else 0 */
	__u64 now_ns;		/* when this snapshot was taken */
	__u64 generation;	/* +1 on every bind, unbind, lease or bus change */
	__u8 lease_id[TALLYMETER_LEASE_ID_LEN];	/* zero when none */
	char driver[TALLYMETER_DRIVER_LEN];	/* current driver, "" if none */
	__u64 reserved[4];	/* zero */
};

/* TALLYMETER_IOC_VERSION: output only. */
struct tallymeter_version {
	__u32 abi_version;	/* TALLYMETER_ABI_VERSION */
	__u32 dev_size;		/* sizeof(struct tallymeter_dev) in the module */
	/* CLOCK_BOOTTIME at module load: a change means counters restarted */
	__u64 loaded_ns;
	__u64 reserved[2];	/* zero */
};

/*
 * TALLYMETER_IOC_LIST: a snapshot of every tracked device.
 *
 * The caller sets capacity, entry_size and devs. When the snapshot has more
 * than capacity devices, the module writes nothing to devs, sets count to
 * the number needed and fails with -E2BIG (capacity 0 asks just for the
 * count). Otherwise it fills count entries. entry_size must be at least
 * sizeof(struct tallymeter_dev); a larger entry (from a newer header) gets
 * its tail zeroed, and entries are entry_size bytes apart.
 */
struct tallymeter_list {
	__u32 capacity;		/* in: entries devs can hold */
	__u32 count;		/* out: devices in the snapshot */
	__u32 entry_size;	/* in: bytes per entry */
	__u32 pad;		/* must be zero */
	__u64 devs;		/* in: user pointer to capacity entries */
	__u64 reserved[2];	/* must be zero */
};

/* TALLYMETER_IOC_READ: one device by address. */
struct tallymeter_read {
	struct tallymeter_bdf bdf;	/* in */
	__u64 reserved[3];		/* in: must be zero */
	struct tallymeter_dev dev;	/* out */
};

/*
 * TALLYMETER_IOC_ATTACH: record which lease a device is assigned to.
 * Attaching the lease already attached is a no-op (so a restarted daemon
 * can repeat it); another lease while one is attached is -EBUSY; an
 * all-zero id is -EINVAL.
 *
 * TALLYMETER_IOC_DETACH: forget the lease. lease_id must be the attached
 * one, else -ENOENT, so a stale caller cannot detach someone else's lease.
 */
struct tallymeter_lease {
	struct tallymeter_bdf bdf;
	__u8 lease_id[TALLYMETER_LEASE_ID_LEN];
	__u64 reserved[2];	/* must be zero */
};

#define TALLYMETER_IOC_MAGIC	0xD7

#define TALLYMETER_IOC_VERSION \
	_IOR(TALLYMETER_IOC_MAGIC, 0x00, struct tallymeter_version)
#define TALLYMETER_IOC_LIST \
	_IOWR(TALLYMETER_IOC_MAGIC, 0x01, struct tallymeter_list)
#define TALLYMETER_IOC_READ \
	_IOWR(TALLYMETER_IOC_MAGIC, 0x02, struct tallymeter_read)
#define TALLYMETER_IOC_ATTACH \
	_IOW(TALLYMETER_IOC_MAGIC, 0x03, struct tallymeter_lease)
#define TALLYMETER_IOC_DETACH \
	_IOW(TALLYMETER_IOC_MAGIC, 0x04, struct tallymeter_lease)

#endif /* TALLYMETER_ABI_H */
