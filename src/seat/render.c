/* render: composing the window: the trust bar (the active VM's name on its label colour, drawn
 * by the seat above the guest's pixels, never by a guest), the active VM scaled to fit, the
 * switcher's tiles, and the state tiles (waiting, stopped, crashed) that replace a display that
 * is gone, so that no stale frame is ever shown. Uploads damaged rectangles to textures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "font.h"
#include "seat.h"

static void colour(SDL_Renderer *r, uint32_t rgb)
{
	SDL_SetRenderDrawColor(r, (Uint8)(rgb >> 16), (Uint8)(rgb >> 8), (Uint8)rgb, 255);
}

static void fill(SDL_Renderer *r, int x, int y, int w, int h, uint32_t rgb)
{
	SDL_Rect rc = {x, y, w, h};
	colour(r, rgb);
	SDL_RenderFillRect(r, &rc);
}

/* Black or white, whichever reads on bg. */
static uint32_t ink_on(uint32_t bg)
{
	unsigned lum = ((bg >> 16 & 255) * 299 + (bg >> 8 & 255) * 587 + (bg & 255) * 114) / 1000;
	return lum > 140 ? 0x000000 : 0xffffff;
}

static void text(SDL_Renderer *r, int x, int y, int scale, uint32_t rgb, const char *s)
{
	colour(r, rgb);
	for (; *s; s++, x += FONT_ADVANCE * scale) {
		uint8_t rows[FONT_H];
		font_glyph(*s, rows);
		for (int row = 0; row < FONT_H; row++) {
			for (int col = 0; col < FONT_W; col++) {
				if (rows[row] & (1u << (FONT_W - 1 - col))) {
					SDL_Rect px = {x + col * scale, y + row * scale, scale, scale};
					SDL_RenderFillRect(r, &px);
				}
			}
		}
	}
}

static void text_centred(SDL_Renderer *r, SDL_Rect box, int scale, uint32_t rgb, const char *s)
{
	while (scale > 1 && font_width(s, scale) > box.w - 8)
		scale--;
	text(r, box.x + (box.w - font_width(s, scale)) / 2, box.y + (box.h - FONT_H * scale) / 2, scale, rgb, s);
}

/* The largest rectangle of the surface's shape that fits in box, centred. */
static SDL_Rect fit(SDL_Rect box, uint32_t w, uint32_t h)
{
	SDL_Rect r = box;
	if (w == 0 || h == 0 || box.w <= 0 || box.h <= 0)
		return (SDL_Rect){0, 0, 0, 0};
	if ((long long)box.w * h > (long long)box.h * w) { /* box is wider: full height */
		r.w = (int)((long long)box.h * w / h);
		r.x = box.x + (box.w - r.w) / 2;
	} else {
		r.h = (int)((long long)box.w * h / w);
		r.y = box.y + (box.h - r.h) / 2;
	}
	return r;
}

static SDL_Rect guest_area(const struct seat *s)
{
	return (SDL_Rect){0, SEAT_BAR_H, s->win_w, s->win_h - SEAT_BAR_H};
}

SDL_Rect render_guest_rect(const struct seat *s, const struct seat_vm *vm)
{
	if (!vm->surface_on)
		return (SDL_Rect){0, 0, 0, 0};
	return fit(guest_area(s), vm->surf.width, vm->surf.height);
}

/* Brings the VM's texture up to date with its surface. */
static void upload(struct seat *s, struct seat_vm *vm)
{
	if (!vm->surface_on)
		return;
	if (!vm->tex || vm->tex_w != vm->surf.width || vm->tex_h != vm->surf.height) {
		if (vm->tex)
			SDL_DestroyTexture(vm->tex);
		vm->tex = SDL_CreateTexture(s->ren, SDL_PIXELFORMAT_RGB888, SDL_TEXTUREACCESS_STREAMING,
					    (int)vm->surf.width, (int)vm->surf.height);
		vm->tex_w = vm->surf.width;
		vm->tex_h = vm->surf.height;
		vm->dirty[0] = vm->dirty[1] = 0;
		vm->dirty[2] = vm->surf.width;
		vm->dirty[3] = vm->surf.height;
	}
	if (!vm->tex || vm->dirty[2] == 0)
		return;
	long long t0 = seat_now_ns();
	SDL_Rect r = {(int)vm->dirty[0], (int)vm->dirty[1], (int)vm->dirty[2], (int)vm->dirty[3]};
	const uint8_t *src =
		vm->map + vm->surf.offset + (size_t)vm->dirty[1] * vm->surf.stride + (size_t)vm->dirty[0] * 4;
	SDL_UpdateTexture(vm->tex, &r, src, (int)vm->surf.stride);
	vm->dirty[2] = vm->dirty[3] = 0;
	seat_sample(&s->upload_ms, (double)(seat_now_ns() - t0) / 1e6);
}

static const char *state_text(const struct seat_vm *vm)
{
	switch (vm->state) {
	case SEAT_VM_WAITING: return "waiting for display";
	case SEAT_VM_LIVE: return vm->surface_on ? "" : "display off";
	case SEAT_VM_STOPPED: return "stopped";
	case SEAT_VM_CRASHED: return "crashed";
	case SEAT_VM_BROKEN: return "display error";
	}
	return "";
}

/* The guest's pointer image over its pixels at r, scaled as they are. */
static void draw_cursor(struct seat *s, struct seat_vm *vm, SDL_Rect r)
{
	if (!vm->cursor_tex) {
		vm->cursor_tex = SDL_CreateTexture(s->ren, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_STREAMING,
						   DISPLAY_CURSOR_SIZE, DISPLAY_CURSOR_SIZE);
		if (!vm->cursor_tex)
			return;
		SDL_SetTextureBlendMode(vm->cursor_tex, SDL_BLENDMODE_BLEND);
		vm->cursor_new = true;
	}
	if (vm->cursor_new) {
		SDL_UpdateTexture(vm->cursor_tex, NULL, vm->cursor_px, DISPLAY_CURSOR_SIZE * 4);
		vm->cursor_new = false;
	}
	double k = (double)r.w / vm->surf.width;
	SDL_Rect c = {r.x + (int)(((double)vm->cursor_x - vm->hot_x) * k),
		      r.y + (int)(((double)vm->cursor_y - vm->hot_y) * k), (int)(DISPLAY_CURSOR_SIZE * k + 0.5),
		      (int)(DISPLAY_CURSOR_SIZE * k + 0.5)};
	SDL_RenderSetClipRect(s->ren, &r); /* never over the trust bar */
	SDL_RenderCopy(s->ren, vm->cursor_tex, NULL, &c);
	SDL_RenderSetClipRect(s->ren, NULL);
}

/* The VM's pixels (and its pointer), or its state written on a tile. */
static void draw_vm(struct seat *s, struct seat_vm *vm, SDL_Rect box, int scale)
{
	if (vm->state == SEAT_VM_LIVE && vm->surface_on && vm->tex) {
		SDL_Rect r = fit(box, vm->surf.width, vm->surf.height);
		SDL_RenderCopy(s->ren, vm->tex, NULL, &r);
		if (vm->cursor_on)
			draw_cursor(s, vm, r);
		return;
	}
	uint32_t bg = vm->state == SEAT_VM_CRASHED ? 0x7f1010 : vm->state == SEAT_VM_BROKEN ? 0x5a3a00 : 0x202020;
	fill(s->ren, box.x, box.y, box.w, box.h, bg);
	text_centred(s->ren, box, scale, 0xffffff, state_text(vm));
}

/* Right on the bar: how the last copy or paste went (a few seconds; a refusal on red), else
 * what shojid holds for a paste; left of it only the seat's own words, never a guest's. */
static void draw_clipboard(struct seat *s, int left)
{
	char t[200];
	if (s->notice[0])
		snprintf(t, sizeof(t), "%s", s->notice);
	else if (s->clip_held)
		snprintf(t, sizeof(t), "clipboard: %lld bytes from %s", s->clip_bytes, s->clip_from);
	else
		return;
	int scale = 2;
	if (s->win_w - font_width(t, scale) - 8 < left)
		scale = 1;
	for (size_t n = strlen(t); n > 4 && s->win_w - font_width(t, scale) - 8 < left; n--)
		memcpy(t + n - 4, "...", 4); /* cut until it fits beside the VM's name */
	int w = font_width(t, scale), x = s->win_w - w - 8;
	if (x < left)
		return;
	uint32_t bg = s->notice[0] && s->notice_bad ? 0xb00020 : 0x202020;
	fill(s->ren, x - 6, 3, w + 12, SEAT_BAR_H - 6, bg);
	text(s->ren, x, (SEAT_BAR_H - FONT_H * scale) / 2, scale, 0xffffff, t);
}

static void draw_bar(struct seat *s)
{
	const struct seat_vm *vm = s->active >= 0 && s->vms[s->active].used ? &s->vms[s->active] : NULL;
	uint32_t bg = vm ? vm->rgb : 0x404040;
	fill(s->ren, 0, 0, s->win_w, SEAT_BAR_H, bg);
	char t[96];
	if (!vm)
		snprintf(t, sizeof(t), "no vm active");
	else if (vm->state == SEAT_VM_LIVE && s->grabbed)
		snprintf(t, sizeof(t), "%s - pointer grabbed", vm->name);
	else if (vm->state == SEAT_VM_LIVE)
		snprintf(t, sizeof(t), "%s", vm->name);
	else
		snprintf(t, sizeof(t), "%s - %s", vm->name, state_text(vm));
	text(s->ren, 8, (SEAT_BAR_H - FONT_H * 3) / 2, 3, ink_on(bg), t);
	draw_clipboard(s, font_width(t, 3) + 24);
}

static void draw_switcher(struct seat *s)
{
	SDL_Rect area = guest_area(s);
	fill(s->ren, area.x, area.y, area.w, area.h, 0x101010);
	int n = 0;
	for (int i = 0; i < SEAT_MAX_VMS; i++)
		n += s->vms[i].used;
	if (n == 0) {
		text_centred(s->ren, area, 3, 0xffffff, "no vm has a display");
		return;
	}
	int cols = 1;
	while (cols * cols < n)
		cols++;
	int rows = (n + cols - 1) / cols, pad = 16;
	int tw = (area.w - pad * (cols + 1)) / cols, th = (area.h - pad * (rows + 1)) / rows;
	for (int k = 0, i = 0; i < SEAT_MAX_VMS; i++) {
		struct seat_vm *vm = &s->vms[i];
		if (!vm->used)
			continue;
		int x = area.x + pad + (k % cols) * (tw + pad), y = area.y + pad + (k / cols) * (th + pad);
		if (i == s->active)
			fill(s->ren, x - 4, y - 4, tw + 8, th + 8, 0xffffff);
		fill(s->ren, x, y, tw, th, vm->rgb);
		char cap[64];
		snprintf(cap, sizeof(cap), "%d %s", k + 1, vm->name);
		k++;
		text(s->ren, x + 6, y + 4, 2, ink_on(vm->rgb), cap);
		SDL_Rect inner = {x + 4, y + 4 + FONT_H * 2 + 6, tw - 8, th - 8 - FONT_H * 2 - 6};
		fill(s->ren, inner.x, inner.y, inner.w, inner.h, 0);
		upload(s, vm);
		draw_vm(s, vm, inner, 2);
	}
}

void render_frame(struct seat *s)
{
	const struct seat_vm *act = s->active >= 0 && s->vms[s->active].used ? &s->vms[s->active] : NULL;
	/* over a guest that draws its own pointer, the host's would be a second one */
	SDL_ShowCursor(!s->switcher && act && act->state == SEAT_VM_LIVE && act->cursor_on ? SDL_DISABLE : SDL_ENABLE);
	SDL_GetRendererOutputSize(s->ren, &s->win_w, &s->win_h);
	colour(s->ren, 0);
	SDL_RenderClear(s->ren);
	draw_bar(s);
	if (s->switcher) {
		draw_switcher(s);
	} else if (s->active >= 0 && s->vms[s->active].used) {
		struct seat_vm *vm = &s->vms[s->active];
		upload(s, vm);
		draw_vm(s, vm, guest_area(s), 3);
	} else if (seat_nth(s, 0) >= 0) { /* neutral: nothing of any guest, input goes nowhere */
		char hint[96];
		snprintf(hint, sizeof(hint), "pick a vm: %s, then its number", s->hotkey_name);
		text_centred(s->ren, guest_area(s), 3, 0xffffff, hint);
	} else {
		text_centred(s->ren, guest_area(s), 3, 0xffffff, "no vm has a display");
	}
}

int render_screenshot(struct seat *s, const char *path, struct err *e)
{
	int w = s->win_w, h = s->win_h;
	uint8_t *px = malloc((size_t)w * h * 3);
	if (!px)
		return err_set(e, "out of memory for a %dx%d screenshot", w, h);
	if (SDL_RenderReadPixels(s->ren, NULL, SDL_PIXELFORMAT_RGB24, px, w * 3) < 0) {
		free(px);
		return err_set(e, "cannot read the window: %s", SDL_GetError());
	}
	FILE *f = fopen(path, "wbe");
	if (!f) {
		free(px);
		return err_errno(e, errno, "cannot write %s", path);
	}
	fprintf(f, "P6\n%d %d\n255\n", w, h);
	size_t n = fwrite(px, 1, (size_t)w * h * 3, f);
	free(px);
	if (fclose(f) != 0 || n != (size_t)w * h * 3)
		return err_set(e, "cannot write %s", path);
	return 0;
}
