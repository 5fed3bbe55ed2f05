// SPDX-License-Identifier: GPL-2.0
/*
 * tallymeter: how long each GPU-class PCI device was assigned to vfio-pci.
 *
 * A GPU passed through to a virtual machine shows the host no utilization,
 * so tally bills it by assignment time. Only the kernel sees with certainty,
 * and across restarts of tallyd, when a device was handed to vfio-pci and
 * when it was taken back: a PCI bus notifier records both moments, and
 * tallyd reads the totals through /dev/tallymeter (see tallymeter_abi.h).
 * Read-only files under /sys/kernel/tallymeter/<bdf>/ show the same numbers
 * to people.
 *
 * Locking: tm_lock (a mutex) guards the device list and every record. The
 * driver core calls the notifier with the device lock held, so the order is
 * always device lock, then tm_lock; nothing here takes a device lock while
 * holding tm_lock. Sysfs directories are created by a work item, not in the
 * notifier, so the callback only records and returns.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "tallymeter_abi.h"

/*
 * PCI class prefixes to track: 0xBB matches a base class, 0xBBSS a base
 * class and subclass, 0xBBSSII one full class code.
 */
#define TM_MAX_CLASSES 16
static unsigned int classes[TM_MAX_CLASSES] = { 0x03, 0x12 };
static int nr_classes = 2;
module_param_array(classes, uint, &nr_classes, 0444);
MODULE_PARM_DESC(classes,
		 "PCI class prefixes to track: 0xBB, 0xBBSS or 0xBBSSII (default 0x03,0x12: display and processing accelerators)");

/* One tracked device; it lives until the module unloads. */
struct tm_device {
	struct list_head node;
	struct kobject kobj;
	bool in_sysfs;			/* claimed or added by the sysfs work */

	/* The address never changes once the record exists. */
	u32 domain;
	u8 bus;
	u8 devfn;

	/* Everything below is guarded by tm_lock. */
	u32 class_code;
	u16 vendor;
	u16 device;
	bool vfio;			/* bound to vfio-pci since bound_since_ns */
	bool gone;
	bool leased;
	char driver[TALLYMETER_DRIVER_LEN];
	u64 assigned_ns;		/* finished assignments only */
	u64 bound_since_ns;
	u64 lease_done_ns;		/* finished assignment time under the lease */
	u64 lease_since_ns;
	u8 lease_id[TALLYMETER_LEASE_ID_LEN];
	u64 generation;
};

static DEFINE_MUTEX(tm_lock);
static LIST_HEAD(tm_devices);
static struct kobject *tm_root;
static u64 tm_loaded_ns;

static void tm_sysfs_work_fn(struct work_struct *work);
static DECLARE_WORK(tm_sysfs_work, tm_sysfs_work_fn);

static bool tm_class_tracked(u32 class_code)
{
	int i;

	for (i = 0; i < nr_classes; i++) {
		u32 prefix = classes[i];

		if (prefix <= 0xff && class_code >> 16 == prefix)
			return true;
		if (prefix > 0xff && prefix <= 0xffff &&
		    class_code >> 8 == prefix)
			return true;
		if (prefix > 0xffff && class_code == prefix)
			return true;
	}
	return false;
}

/* vfio-pci itself and its vendor variants ("mlx5_vfio_pci", ...). */
static bool tm_driver_is_vfio(const char *name)
{
	static const char * const suffixes[] = { "vfio-pci", "vfio_pci" };
	size_t len = strlen(name);
	int i;

	for (i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t slen = strlen(suffixes[i]);

		if (len >= slen && !strcmp(name + len - slen, suffixes[i]))
			return true;
	}
	return false;
}

static struct tm_device *tm_find(u32 domain, u8 bus, u8 devfn)
{
	struct tm_device *d;

	lockdep_assert_held(&tm_lock);
	list_for_each_entry(d, &tm_devices, node)
		if (d->domain == domain && d->bus == bus && d->devfn == devfn)
			return d;
	return NULL;
}

static struct tm_device *tm_find_pci(struct pci_dev *pdev)
{
	return tm_find(pci_domain_nr(pdev->bus), pdev->bus->number,
		       pdev->devfn);
}

/* Time of the running assignment that falls after @since. */
static u64 tm_running_ns(const struct tm_device *d, u64 since, u64 now)
{
	if (!d->vfio)
		return 0;
	since = max(since, d->bound_since_ns);
	return now > since ? now - since : 0;
}

static void tm_assignment_start(struct tm_device *d, u64 now)
{
	if (d->vfio)
		return;
	d->vfio = true;
	d->bound_since_ns = now;
	d->generation++;
}

static void tm_assignment_stop(struct tm_device *d, u64 now)
{
	if (!d->vfio)
		return;
	d->assigned_ns += tm_running_ns(d, 0, now);
	if (d->leased)
		d->lease_done_ns += tm_running_ns(d, d->lease_since_ns, now);
	d->vfio = false;
	d->bound_since_ns = 0;
	d->generation++;
}

static void tm_fill(const struct tm_device *d, u64 now,
		    struct tallymeter_dev *out)
{
	memset(out, 0, sizeof(*out));
	out->bdf.domain = d->domain;
	out->bdf.bus = d->bus;
	out->bdf.devfn = d->devfn;
	out->class_code = d->class_code;
	out->vendor = d->vendor;
	out->device = d->device;
	out->flags = (d->vfio ? TALLYMETER_DEV_VFIO : 0) |
		     (d->leased ? TALLYMETER_DEV_LEASED : 0) |
		     (d->gone ? TALLYMETER_DEV_GONE : 0);
	out->assigned_ns = d->assigned_ns + tm_running_ns(d, 0, now);
	out->bound_since_ns = d->bound_since_ns;
	if (d->leased) {
		out->lease_ns = d->lease_done_ns +
				tm_running_ns(d, d->lease_since_ns, now);
		out->lease_since_ns = d->lease_since_ns;
		memcpy(out->lease_id, d->lease_id, sizeof(out->lease_id));
	}
	out->now_ns = now;
	out->generation = d->generation;
	strscpy(out->driver, d->driver, sizeof(out->driver));
}

/* ---- sysfs: /sys/kernel/tallymeter/<bdf>/ ------------------------------ */

static void tm_snapshot_kobj(struct kobject *kobj, struct tallymeter_dev *out)
{
	struct tm_device *d = container_of(kobj, struct tm_device, kobj);

	mutex_lock(&tm_lock);
	tm_fill(d, ktime_get_boottime_ns(), out);
	mutex_unlock(&tm_lock);
}

static ssize_t driver_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	struct tallymeter_dev snap;

	tm_snapshot_kobj(kobj, &snap);
	return sysfs_emit(buf, "%s\n", snap.driver);
}

static ssize_t assigned_ns_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	struct tallymeter_dev snap;

	tm_snapshot_kobj(kobj, &snap);
	return sysfs_emit(buf, "%llu\n", snap.assigned_ns);
}

static ssize_t vfio_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	struct tallymeter_dev snap;

	tm_snapshot_kobj(kobj, &snap);
	return sysfs_emit(buf, "%d\n", !!(snap.flags & TALLYMETER_DEV_VFIO));
}

static ssize_t class_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct tallymeter_dev snap;

	tm_snapshot_kobj(kobj, &snap);
	return sysfs_emit(buf, "0x%06x\n", snap.class_code);
}

/* The lease id in lower-case hex, or an empty line when none is attached. */
static ssize_t lease_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct tallymeter_dev snap;

	tm_snapshot_kobj(kobj, &snap);
	if (!(snap.flags & TALLYMETER_DEV_LEASED))
		return sysfs_emit(buf, "\n");
	return sysfs_emit(buf, "%*phN\n", TALLYMETER_LEASE_ID_LEN,
			  snap.lease_id);
}

static struct kobj_attribute tm_attr_driver = __ATTR_RO(driver);
static struct kobj_attribute tm_attr_assigned_ns = __ATTR_RO(assigned_ns);
static struct kobj_attribute tm_attr_vfio = __ATTR_RO(vfio);
static struct kobj_attribute tm_attr_class = __ATTR_RO(class);
static struct kobj_attribute tm_attr_lease = __ATTR_RO(lease);

static struct attribute *tm_dev_attrs[] = {
	&tm_attr_driver.attr,
	&tm_attr_assigned_ns.attr,
	&tm_attr_vfio.attr,
	&tm_attr_class.attr,
	&tm_attr_lease.attr,
	NULL,
};
ATTRIBUTE_GROUPS(tm_dev);

static void tm_dev_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct tm_device, kobj));
}

static const struct kobj_type tm_dev_ktype = {
	.release = tm_dev_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = tm_dev_groups,
};

/* Claims the next record that has no sysfs directory yet. */
static struct tm_device *tm_next_without_sysfs(void)
{
	struct tm_device *d;

	mutex_lock(&tm_lock);
	list_for_each_entry(d, &tm_devices, node) {
		if (!d->in_sysfs) {
			d->in_sysfs = true;
			mutex_unlock(&tm_lock);
			return d;
		}
	}
	mutex_unlock(&tm_lock);
	return NULL;
}

/*
 * Records are never freed while the module is loaded, so a claimed record
 * stays valid here without tm_lock, which the new files' show methods take.
 */
static void tm_sysfs_work_fn(struct work_struct *work)
{
	struct tm_device *d;
	int err;

	while ((d = tm_next_without_sysfs())) {
		err = kobject_add(&d->kobj, tm_root, "%04x:%02x:%02x.%d",
				  d->domain, d->bus, PCI_SLOT(d->devfn),
				  PCI_FUNC(d->devfn));
		if (err)
			pr_warn("%04x:%02x:%02x.%d: no sysfs directory: %d\n",
				d->domain, d->bus, PCI_SLOT(d->devfn),
				PCI_FUNC(d->devfn), err);
		/* On failure in_sysfs stays set: one warning, no retry loop. */
	}
}

/* ---- bus events ---------------------------------------------------------- */

static void tm_set_driver(struct tm_device *d, const char *name, u64 now)
{
	strscpy(d->driver, name, sizeof(d->driver));
	if (tm_driver_is_vfio(name))
		tm_assignment_start(d, now);
	else
		tm_assignment_stop(d, now);
	d->generation++;
}

static void tm_clear_driver(struct tm_device *d, u64 now)
{
	if (!d->driver[0] && !d->vfio)
		return;
	tm_assignment_stop(d, now);
	d->driver[0] = '\0';
	d->generation++;
}

/*
 * Starts tracking @pdev, or takes up its old record again when a device
 * with the same address comes back after a removal: the counters and the
 * lease of that address carry on.
 */
static int tm_track(struct pci_dev *pdev)
{
	struct tm_device *d, *fresh;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
	if (!fresh)
		return -ENOMEM;

	mutex_lock(&tm_lock);
	d = tm_find_pci(pdev);
	if (!d) {
		d = fresh;
		fresh = NULL;
		kobject_init(&d->kobj, &tm_dev_ktype);
		d->domain = pci_domain_nr(pdev->bus);
		d->bus = pdev->bus->number;
		d->devfn = pdev->devfn;
		list_add_tail(&d->node, &tm_devices);
	} else if (d->gone) {
		d->gone = false;
		d->driver[0] = '\0';
	}
	d->class_code = pdev->class;
	d->vendor = pdev->vendor;
	d->device = pdev->device;
	d->generation++;
	mutex_unlock(&tm_lock);

	kfree(fresh);
	schedule_work(&tm_sysfs_work);
	return 0;
}

static void tm_device_removed(struct pci_dev *pdev, u64 now)
{
	struct tm_device *d;

	mutex_lock(&tm_lock);
	d = tm_find_pci(pdev);
	if (d && !d->gone) {
		tm_clear_driver(d, now);
		d->gone = true;
		d->generation++;
	}
	mutex_unlock(&tm_lock);
}

static void tm_driver_bound(struct pci_dev *pdev, u64 now)
{
	struct tm_device *d;

	mutex_lock(&tm_lock);
	d = tm_find_pci(pdev);
	if (d && pdev->dev.driver)
		tm_set_driver(d, pdev->dev.driver->name, now);
	mutex_unlock(&tm_lock);
}

static void tm_driver_unbound(struct pci_dev *pdev, u64 now)
{
	struct tm_device *d;

	mutex_lock(&tm_lock);
	d = tm_find_pci(pdev);
	if (d)
		tm_clear_driver(d, now);
	mutex_unlock(&tm_lock);
}

static int tm_bus_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	struct pci_dev *pdev = to_pci_dev(data);
	u64 now = ktime_get_boottime_ns();

	if (!tm_class_tracked(pdev->class))
		return NOTIFY_DONE;

	switch (action) {
	case BUS_NOTIFY_ADD_DEVICE:
		if (tm_track(pdev))
			pci_warn(pdev, "tallymeter: out of memory, not tracked\n");
		break;
	case BUS_NOTIFY_BOUND_DRIVER:
		tm_driver_bound(pdev, now);
		break;
	/* The assignment ends when the unbind starts. */
	case BUS_NOTIFY_UNBIND_DRIVER:
	case BUS_NOTIFY_UNBOUND_DRIVER:
		tm_driver_unbound(pdev, now);
		break;
	case BUS_NOTIFY_DEL_DEVICE:
		tm_device_removed(pdev, now);
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block tm_nb = {
	.notifier_call = tm_bus_notify,
};

/*
 * The notifier is registered before this walk, so a device that appears or
 * changes driver meanwhile is seen by one or the other; both paths are
 * idempotent. The device lock keeps the driver stable while it is read.
 */
static int tm_enumerate(void)
{
	struct pci_dev *pdev = NULL;
	int err;

	for_each_pci_dev(pdev) {
		if (!tm_class_tracked(pdev->class))
			continue;
		err = tm_track(pdev);
		if (err) {
			pci_dev_put(pdev);
			return err;
		}
		device_lock(&pdev->dev);
		if (pdev->dev.driver)
			tm_driver_bound(pdev, ktime_get_boottime_ns());
		device_unlock(&pdev->dev);
	}
	return 0;
}

/* Unlinks every record, then removes its directory outside tm_lock. */
static void tm_forget_all(void)
{
	struct tm_device *d, *next;
	LIST_HEAD(doomed);

	mutex_lock(&tm_lock);
	list_splice_init(&tm_devices, &doomed);
	mutex_unlock(&tm_lock);

	list_for_each_entry_safe(d, next, &doomed, node) {
		list_del(&d->node);
		if (d->kobj.state_in_sysfs)
			kobject_del(&d->kobj);
		kobject_put(&d->kobj);
	}
}

/* ---- /dev/tallymeter ----------------------------------------------------- */

static bool tm_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

static int tm_check_bdf(const struct tallymeter_bdf *bdf)
{
	return bdf->pad ? -EINVAL : 0;
}

static long tm_ioctl_version(void __user *argp)
{
	struct tallymeter_version v = {
		.abi_version = TALLYMETER_ABI_VERSION,
		.dev_size = sizeof(struct tallymeter_dev),
		.loaded_ns = tm_loaded_ns,
	};

	return copy_to_user(argp, &v, sizeof(v)) ? -EFAULT : 0;
}

/* Copies every record into a new array, so user copies happen unlocked. */
static struct tallymeter_dev *tm_snapshot_all(u32 *count)
{
	struct tallymeter_dev *snap;
	struct tm_device *d;
	u32 n = 0;
	u64 now;

	mutex_lock(&tm_lock);
	list_for_each_entry(d, &tm_devices, node)
		n++;
	snap = kvcalloc(max(n, 1U), sizeof(*snap), GFP_KERNEL);
	if (snap) {
		now = ktime_get_boottime_ns();
		n = 0;
		list_for_each_entry(d, &tm_devices, node)
			tm_fill(d, now, &snap[n++]);
	}
	mutex_unlock(&tm_lock);
	*count = n;
	return snap;
}

static long tm_copy_entries(u64 dst, u32 entry_size,
			    const struct tallymeter_dev *snap, u32 count)
{
	u32 i;

	for (i = 0; i < count; i++) {
		char __user *entry = u64_to_user_ptr(dst + (u64)i * entry_size);

		if (copy_to_user(entry, &snap[i], sizeof(snap[i])))
			return -EFAULT;
		if (clear_user(entry + sizeof(snap[i]),
			       entry_size - sizeof(snap[i])))
			return -EFAULT;
	}
	return 0;
}

static long tm_ioctl_list(void __user *argp)
{
	struct tallymeter_list req;
	struct tallymeter_dev *snap;
	u32 count;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.pad || !tm_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	if (req.entry_size < sizeof(struct tallymeter_dev) ||
	    req.entry_size > PAGE_SIZE)
		return -EINVAL;

	snap = tm_snapshot_all(&count);
	if (!snap)
		return -ENOMEM;
	if (count > req.capacity)
		ret = -E2BIG;
	else
		ret = tm_copy_entries(req.devs, req.entry_size, snap, count);
	kvfree(snap);

	if (ret && ret != -E2BIG)
		return ret;
	req.count = count;
	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;
	return ret;
}

static long tm_ioctl_read(void __user *argp)
{
	struct tallymeter_read req;
	struct tm_device *d;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	ret = tm_check_bdf(&req.bdf);
	if (ret)
		return ret;
	if (!tm_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;

	mutex_lock(&tm_lock);
	d = tm_find(req.bdf.domain, req.bdf.bus, req.bdf.devfn);
	if (d)
		tm_fill(d, ktime_get_boottime_ns(), &req.dev);
	mutex_unlock(&tm_lock);
	if (!d)
		return -ENODEV;

	return copy_to_user(argp, &req, sizeof(req)) ? -EFAULT : 0;
}

static long tm_lease_attach(struct tm_device *d, const u8 *lease_id)
{
	if (d->leased)
		return memcmp(d->lease_id, lease_id, TALLYMETER_LEASE_ID_LEN) ?
		       -EBUSY : 0;
	memcpy(d->lease_id, lease_id, TALLYMETER_LEASE_ID_LEN);
	d->leased = true;
	d->lease_since_ns = ktime_get_boottime_ns();
	d->lease_done_ns = 0;
	d->generation++;
	return 0;
}

static long tm_lease_detach(struct tm_device *d, const u8 *lease_id)
{
	if (!d->leased ||
	    memcmp(d->lease_id, lease_id, TALLYMETER_LEASE_ID_LEN))
		return -ENOENT;
	memset(d->lease_id, 0, TALLYMETER_LEASE_ID_LEN);
	d->leased = false;
	d->lease_since_ns = 0;
	d->lease_done_ns = 0;
	d->generation++;
	return 0;
}

static long tm_ioctl_lease(void __user *argp, bool attach)
{
	struct tallymeter_lease req;
	struct tm_device *d;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	ret = tm_check_bdf(&req.bdf);
	if (ret)
		return ret;
	if (!tm_zero(req.reserved, sizeof(req.reserved)) ||
	    tm_zero(req.lease_id, sizeof(req.lease_id)))
		return -EINVAL;

	mutex_lock(&tm_lock);
	d = tm_find(req.bdf.domain, req.bdf.bus, req.bdf.devfn);
	if (!d || d->gone)
		ret = -ENODEV;
	else if (attach)
		ret = tm_lease_attach(d, req.lease_id);
	else
		ret = tm_lease_detach(d, req.lease_id);
	mutex_unlock(&tm_lock);
	return ret;
}

static long tm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case TALLYMETER_IOC_VERSION:
		return tm_ioctl_version(argp);
	case TALLYMETER_IOC_LIST:
		return tm_ioctl_list(argp);
	case TALLYMETER_IOC_READ:
		return tm_ioctl_read(argp);
	case TALLYMETER_IOC_ATTACH:
		return tm_ioctl_lease(argp, true);
	case TALLYMETER_IOC_DETACH:
		return tm_ioctl_lease(argp, false);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations tm_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice tm_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tallymeter",
	.fops = &tm_fops,
	.mode = 0600,
};

/* ---- load and unload ----------------------------------------------------- */

static int tm_check_classes(void)
{
	int i;

	for (i = 0; i < nr_classes; i++) {
		if (classes[i] > 0xffffff) {
			pr_err("class prefix 0x%x is longer than a class code\n",
			       classes[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static void tm_stop_tracking(void)
{
	bus_unregister_notifier(&pci_bus_type, &tm_nb);
	cancel_work_sync(&tm_sysfs_work);
	tm_forget_all();
}

static int __init tm_init(void)
{
	int err;

	/* The ABI promises these sizes to 32- and 64-bit callers alike. */
	BUILD_BUG_ON(sizeof(struct tallymeter_bdf) != 8);
	BUILD_BUG_ON(sizeof(struct tallymeter_dev) != 168);
	BUILD_BUG_ON(sizeof(struct tallymeter_version) != 32);
	BUILD_BUG_ON(sizeof(struct tallymeter_list) != 40);
	BUILD_BUG_ON(sizeof(struct tallymeter_read) != 200);
	BUILD_BUG_ON(sizeof(struct tallymeter_lease) != 56);

	err = tm_check_classes();
	if (err)
		return err;
	tm_loaded_ns = ktime_get_boottime_ns();

	tm_root = kobject_create_and_add("tallymeter", kernel_kobj);
	if (!tm_root)
		return -ENOMEM;
	err = bus_register_notifier(&pci_bus_type, &tm_nb);
	if (err)
		goto err_root;
	err = tm_enumerate();
	if (err)
		goto err_tracking;
	/* Devices present at load get their directories before insmod returns. */
	flush_work(&tm_sysfs_work);
	err = misc_register(&tm_misc);
	if (err)
		goto err_tracking;
	return 0;

err_tracking:
	tm_stop_tracking();
err_root:
	kobject_put(tm_root);
	return err;
}

/*
 * An open /dev/tallymeter pins the module, and unregistering the notifier
 * waits for a running callback, so nothing can touch a record after this.
 * Devices stay bound to vfio-pci: the module only watches.
 */
static void __exit tm_exit(void)
{
	misc_deregister(&tm_misc);
	tm_stop_tracking();
	kobject_put(tm_root);
}

module_init(tm_init);
module_exit(tm_exit);

MODULE_DESCRIPTION("tally: GPU assignment time of PCI devices bound to vfio-pci");
MODULE_AUTHOR("tally developers");
MODULE_LICENSE("GPL");
