/* edid: the EDID base block (see edid.h; VESA E-EDID 1.4 layout). */
#include "edid.h"

#include <string.h>

#define HBLANK 160u
#define VBLANK 30u

static void descriptor_text(uint8_t *d, uint8_t tag, const char *text)
{
	memset(d, 0, 18);
	d[3] = tag;
	memset(d + 5, ' ', 13);
	size_t n = strlen(text);
	memcpy(d + 5, text, n);
	d[5 + n] = '\n';
}

/* A detailed timing descriptor for width x height with fixed blanking. */
static void detailed_timing(uint8_t *d, uint32_t w, uint32_t h)
{
	uint64_t total = (uint64_t)(w + HBLANK) * (h + VBLANK);
	uint64_t clock = total * 60 / 10000; /* in 10 kHz units */
	if (clock > 0xffff)
		clock = 0xffff; /* very large modes: a lower refresh */
	if (clock == 0)
		clock = 1;
	d[0] = (uint8_t)clock;
	d[1] = (uint8_t)(clock >> 8);
	d[2] = (uint8_t)w;
	d[3] = (uint8_t)HBLANK;
	d[4] = (uint8_t)(((w >> 8) & 0xf) << 4 | ((HBLANK >> 8) & 0xf));
	d[5] = (uint8_t)h;
	d[6] = (uint8_t)VBLANK;
	d[7] = (uint8_t)(((h >> 8) & 0xf) << 4 | ((VBLANK >> 8) & 0xf));
	d[8] = 48;                     /* horizontal front porch */
	d[9] = 32;                     /* sync width */
	d[10] = (uint8_t)(3 << 4 | 5); /* vertical front porch 3, sync 5 */
	d[11] = 0;
	uint32_t wmm = w * 254 / 960, hmm = h * 254 / 960; /* about 96 dpi */
	d[12] = (uint8_t)wmm;
	d[13] = (uint8_t)hmm;
	d[14] = (uint8_t)(((wmm >> 8) & 0xf) << 4 | ((hmm >> 8) & 0xf));
	d[17] = 0x18; /* digital separate sync, both polarities negative */
}

void edid_build(uint8_t out[EDID_SIZE], uint32_t width, uint32_t height)
{
	if (width < 1)
		width = 1;
	if (height < 1)
		height = 1;
	if (width > 4095)
		width = 4095;
	if (height > 4095)
		height = 4095;
	memset(out, 0, EDID_SIZE);
	static const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	memcpy(out, header, 8);
	/* Manufacturer "SHJ" (5-bit letters), product 1, serial 0, week 1 of 2026. */
	uint16_t id = (uint16_t)(('S' - '@') << 10 | ('H' - '@') << 5 | ('J' - '@'));
	out[8] = (uint8_t)(id >> 8);
	out[9] = (uint8_t)id;
	out[10] = 1;
	out[16] = 1;
	out[17] = 2026 - 1990;
	out[18] = 1; /* EDID 1.4 */
	out[19] = 4;
	out[20] = 0xa5; /* digital, 8 bits a colour, DisplayPort */
	uint32_t wcm = width * 254 / 9600, hcm = height * 254 / 9600;
	out[21] = (uint8_t)(wcm ? wcm : 1);
	out[22] = (uint8_t)(hcm ? hcm : 1);
	out[23] = 120;  /* gamma 2.2 */
	out[24] = 0x06; /* sRGB default, preferred timing is native */
	/* Chromaticity of sRGB. */
	static const uint8_t chroma[10] = {0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54};
	memcpy(out + 25, chroma, 10);
	/* No established or standard timings: standard timing slots marked unused. */
	for (int i = 38; i < 54; i++)
		out[i] = 1;
	detailed_timing(out + 54, width, height);
	descriptor_text(out + 72, 0xfc, "shoji"); /* monitor name */
	descriptor_text(out + 90, 0xff, "0");     /* serial */
	/* Range limits: 50-75 Hz vertical, 30-160 kHz horizontal, 655 MHz. */
	uint8_t *r = out + 108;
	r[3] = 0xfd;
	r[5] = 50, r[6] = 75, r[7] = 30, r[8] = 160, r[9] = 66, r[10] = 1; /* no timing formula */
	r[11] = '\n';
	memset(r + 12, ' ', 6);
	uint8_t sum = 0;
	for (int i = 0; i < EDID_SIZE - 1; i++)
		sum = (uint8_t)(sum + out[i]);
	out[127] = (uint8_t)(0x100 - sum);
}
