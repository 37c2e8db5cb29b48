// Swagger UI served from the app itself; the OpenAPI document needs the sign-in token.
(function () {
  "use strict";
  const token = sessionStorage.getItem("openai-compat-token") || "";
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    requestInterceptor: function (req) {
      if (token && !req.headers.Authorization) {
        req.headers.Authorization = "Bearer " + token;
      }
      return req;
    },
  });
})();
