// Makes async handlers behave the same under Express 4 and 5: a rejected promise reaches the error handler.
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';

/**
 * Express 5 hands a promise rejected by a handler to the error handlers; Express 4 ignores the
 * promise, so the request hangs and the rejection goes unhandled (fatal by default in Node).
 * The wrapped handler forwards the rejection to `next` itself and returns nothing, so both
 * majors see one behaviour and Express 5 never forwards an error twice.
 */
export function forwardRejections(handler: (req: Request, res: Response, next: NextFunction) => unknown): RequestHandler {
  return (req, res, next) => {
    try {
      const result = handler(req, res, next);
      if (result instanceof Promise) result.catch(next);
    } catch (error) {
      next(error);
    }
  };
}

const ROUTE_METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/**
 * `router` with {@link forwardRejections} applied to every handler later registered through
 * get/post/put/patch/delete (error handlers, of four parameters, are left as they are).
 */
export function withForwardedRejections(router: Router): Router {
  for (const method of ROUTE_METHODS) {
    const register = (router[method] as (...args: unknown[]) => Router).bind(router);
    const wrapped = (...args: unknown[]): Router =>
      register(
        ...args.map((arg) =>
          typeof arg === 'function' && arg.length < 4 ? forwardRejections(arg as (req: Request, res: Response, next: NextFunction) => unknown) : arg,
        ),
      );
    Object.defineProperty(router, method, { value: wrapped, configurable: true, writable: true });
  }
  return router;
}
