/* limits: the bounds the monitor and the toolstack share, in one place, so that a definition
 * shojid accepts is one the monitor accepts (and the monitor's own options say the same). */
#ifndef SHOJI_COMMON_LIMITS_H
#define SHOJI_COMMON_LIMITS_H

#define SHOJI_MAX_DISKS       8
#define SHOJI_MAX_NICS        4
#define SHOJI_MAX_FWDS        8               /* port forwards on one user-mode NIC */
#define SHOJI_MAX_NIC_QUEUES  8               /* queue pairs of one TAP NIC (multiqueue) */
#define SHOJI_MAX_CPUS        254             /* vCPUs: the MADT's 8-bit APIC ids, less the broadcast */
#define SHOJI_MIN_MEMORY_MIB  32u             /* guest RAM: what the boot layout needs */
#define SHOJI_MAX_MEMORY_MIB  (1024u * 1024u) /* guest RAM: 1 TiB */
#define SHOJI_DISK_SERIAL_MAX 20              /* a disk's serial: virtio-blk's GET_ID bytes */
#define SHOJI_DISK_WORKERS    4               /* threads serving one disk's requests side by side */
#define SHOJI_CLIPBOARD_MAX   (256u << 10)    /* a clipboard's bytes between VMs (policy may allow less) */
#define SHOJI_USB_MAX_RULES   16              /* words in one usb-allow or usb-deny list */
#define SHOJI_USB_MAX_DEVICES 128             /* USB devices listed and assigned at once */

#endif
