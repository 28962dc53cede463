/* platform: the fixed I/O ports and interrupt lines of the machine shoji-vmm emulates. The ACPI
 * tables describe exactly these, and the device models claim exactly these. */
#ifndef SHOJI_VMM_PLATFORM_H
#define SHOJI_VMM_PLATFORM_H

#define PORT_I8042_DATA       0x60
#define PORT_I8042_CMD        0x64
#define PORT_RTC              0x70 /* index; data at 0x71 */
#define IRQ_RTC               8
#define PORT_POST             0x80 /* POST code / I/O delay: a sink */
#define PORT_COM1             0x3f8
#define IRQ_COM1              4
#define PORT_PVPANIC          0x505
#define PORT_FW_CFG           0x510 /* fw_cfg: selector; data at 0x511, DMA address at 0x514 */
#define PORT_FW_CFG_DATA      (PORT_FW_CFG + 1)
#define PORT_FW_CFG_DMA       (PORT_FW_CFG + 4)
#define PORT_FW_CFG_LEN       12
#define PORT_PCI_CONFIG       0xcf8 /* configuration mechanism #1: address, then data at 0xcfc */
#define PORT_PM_BASE          0x600 /* ACPI hardware-reduced sleep and reset registers */
#define PORT_PM_SLEEP_CONTROL (PORT_PM_BASE + 0)
#define PORT_PM_SLEEP_STATUS  (PORT_PM_BASE + 1)
#define PORT_PM_RESET         (PORT_PM_BASE + 2)
#define PORT_PM_LEN           3
#define PM_RESET_VALUE        0x01
#define PM_SLEEP_TYPE_S5      5  /* the value of \_S5 in the DSDT */
#define GSI_POWER_BUTTON      16 /* the ACPI Generic Event Device's line (I/O APIC pin 16) */

#endif
