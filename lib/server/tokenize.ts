// POST /tokenize and POST /detokenize, as llama.cpp's server has them.
import { Fields, tokenIds, typeError } from './params.js';
import type { RequestContext } from './choices.js';
import { sendJson } from './http.js';

/** {content, parse_special?: true, with_pieces?: false, add_special?} → {tokens: [id] | [{id, piece}]} */
export async function tokenize(ctx: RequestContext, body: Record<string, unknown>): Promise<void> {
  const f = new Fields(body);
  const content = f.required('content');
  if (typeof content !== 'string') typeError('content', 'string', content);
  f.boolean('add_special');   // GPT-2 adds no BOS: accepted, nothing to add
  const parseSpecial = f.boolean('parse_special') ?? true;
  const withPieces = f.boolean('with_pieces') ?? false;
  const ids = await ctx.model.tokenizeAsync(content, parseSpecial ? { allowedSpecial: 'all' } : undefined);
  const tokens = withPieces
    ? Array.from(ids, (id) => {
      const piece = ctx.pieces.get(id);
      // a piece that is not UTF-8 on its own is given as its bytes (llama.cpp's convention)
      return { id, piece: piece.utf8 ? piece.text : piece.bytes };
    })
    : Array.from(ids);
  sendJson(ctx.res, 200, { tokens });
}

/** {tokens: [id]} → {content} */
export async function detokenize(ctx: RequestContext, body: Record<string, unknown>): Promise<void> {
  const f = new Fields(body);
  const ids = tokenIds('tokens', f.required('tokens'), ctx.model.info.vocabSize);
  sendJson(ctx.res, 200, { content: ctx.model.detokenize(ids) });
}
