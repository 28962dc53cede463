/* renderer: how the seat draws. SDL's GPU renderer where a real GPU is behind it; otherwise SDL's
 * software renderer writing straight into the window's framebuffer (MIT-SHM on X11, no GL): an
 * OpenGL that is itself a software rasterizer (Mesa's llvmpipe, on a machine without a GPU
 * driver or under Xvfb) costs ten times the CPU and about 15 ms more a frame than that path. */
#include <string.h>

#include "seat.h"

#define GL_RENDERER_NAME 0x1F01 /* glGetString(GL_RENDERER) */

/* The OpenGL renderer's name, for the current context; "" where there is none. */
static const char *gl_renderer_name(void)
{
	typedef const unsigned char *(*get_string_fn)(unsigned);
	get_string_fn get = (get_string_fn)SDL_GL_GetProcAddress("glGetString");
	const unsigned char *name = get ? get(GL_RENDERER_NAME) : NULL;
	return name ? (const char *)name : "";
}

static bool is_software_gl(const char *name)
{
	static const char *const soft[] = {"llvmpipe", "softpipe", "swrast", "Software Rasterizer"};
	for (size_t i = 0; i < sizeof(soft) / sizeof(soft[0]); i++)
		if (strstr(name, soft[i]))
			return true;
	return false;
}

static SDL_Renderer *software_renderer(SDL_Window *win)
{
	/* Read before the window's framebuffer is first made: not through a GL texture. */
	SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
	return SDL_CreateRenderer(win, -1, SDL_RENDERER_SOFTWARE);
}

int renderer_parse(const char *v, enum seat_renderer *out, struct err *e)
{
	static const char *const names[] =
		{[SEAT_RENDERER_AUTO] = "auto", [SEAT_RENDERER_GPU] = "gpu", [SEAT_RENDERER_SOFTWARE] = "software"};
	for (int i = 0; i < 3; i++)
		if (strcmp(v, names[i]) == 0)
			return *out = (enum seat_renderer)i, 0;
	return err_set(e, "--renderer '%s': use auto, gpu or software", v);
}

/* Names s->ren in s->renderer_desc (e.g. "opengl (llvmpipe ...)"), then note; returns the
 * OpenGL renderer's name ("" where it is not OpenGL). */
static const char *describe(struct seat *s, const char *note)
{
	SDL_RendererInfo ri;
	if (SDL_GetRendererInfo(s->ren, &ri) < 0) {
		snprintf(s->renderer_desc, sizeof(s->renderer_desc), "unnamed%s", note);
		return "";
	}
	const char *gl = strncmp(ri.name, "opengl", 6) == 0 ? gl_renderer_name() : "";
	snprintf(s->renderer_desc, sizeof(s->renderer_desc), "%s%s%.80s%s%s", ri.name, *gl ? " (" : "", gl,
		 *gl ? ")" : "", note);
	return gl;
}

int renderer_open(struct seat *s, enum seat_renderer choice, struct err *e)
{
	if (choice != SEAT_RENDERER_SOFTWARE) {
		s->ren = SDL_CreateRenderer(s->win, -1, SDL_RENDERER_ACCELERATED);
		if (s->ren) {
			const char *gl = describe(s, "");
			if (choice == SEAT_RENDERER_GPU || !is_software_gl(gl))
				return 0;
			snprintf(s->renderer_desc, sizeof(s->renderer_desc), "software (OpenGL is %.80s)", gl);
			SDL_DestroyRenderer(s->ren);
			s->ren = NULL;
		} else if (choice == SEAT_RENDERER_GPU) {
			return err_set(e, "no GPU renderer: %s (try --renderer software)", SDL_GetError());
		} else {
			snprintf(s->renderer_desc, sizeof(s->renderer_desc), "software (no GPU renderer)");
		}
	} else {
		snprintf(s->renderer_desc, sizeof(s->renderer_desc), "software");
	}
	s->ren = software_renderer(s->win);
	if (!s->ren && choice == SEAT_RENDERER_AUTO) {
		/* Video drivers without a window framebuffer (KMS/DRM on a console) have only the GL
		 * path, software rasterizer or not. */
		s->ren = SDL_CreateRenderer(s->win, -1, SDL_RENDERER_ACCELERATED);
		if (s->ren)
			describe(s, " (no window framebuffer)");
	}
	if (!s->ren)
		return err_set(e, "cannot draw in the window: %s", SDL_GetError());
	return 0;
}
